"""MTEB tasks as a source: any MTEB retrieval or re-ranking task, read through mteb's own loader
(``mteb.get_task(...).load_data()``) at the dataset revision MTEB pins, so a suite evaluates
exactly the queries, documents, judgments and candidates MTEB does.

mteb loads through ``datasets``: online it downloads the pinned revision into the datasets cache
(``HF_DATASETS_CACHE``, by default ``$HF_HOME/datasets``); offline (``HF_HUB_OFFLINE=1``) it reads
only that cache, where a task's data must already be prepared.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.data.sources import RawData
from harness.errors import DataUnavailableError, UnknownNameError
from harness.extras import require
from harness.suite_sources import MtebSource


def _task(source: MtebSource, where: str):
    mteb = require("mteb", f"{where}: `source: {{kind: mteb}}`")
    try:
        metadata = mteb.get_task(source.task).metadata
    except (KeyError, ValueError) as e:
        raise UnknownNameError(f"{where}: MTEB has no task {source.task!r} ({str(e).splitlines()[0]}). "
                               "`mteb.get_tasks()` lists them; give the name as MTEB spells it.") from None
    if metadata.type not in ("Retrieval", "Reranking", "InstructionRetrieval", "InstructionReranking"):
        raise UnknownNameError(f"{where}: MTEB task {source.task} is a {metadata.type} task; a suite dataset is a "
                               "retrieval or re-ranking task.")
    subsets = list(metadata.hf_subsets_to_langscripts)
    subset = source.subset or (subsets[0] if len(subsets) == 1 else None)
    if subset not in subsets:
        raise UnknownNameError(f"{where}: MTEB task {source.task} has subsets {', '.join(subsets)}; name one with "
                               "`source.subset` (e.g. the language).")
    split = source.split or metadata.eval_splits[0]
    if split not in metadata.eval_splits:
        raise UnknownNameError(f"{where}: MTEB task {source.task} evaluates on {', '.join(metadata.eval_splits)}, "
                               f"not {split!r}; set the dataset's `split` (or `source.split`).")
    return mteb.get_task(source.task, eval_splits=[split], hf_subsets=[subset]), subset, split


def revision(source: MtebSource) -> dict:
    task, subset, split = _task(source, f"MTEB task {source.task}")
    return {"dataset": task.metadata.dataset["path"], "dataset_revision": task.metadata.revision,
            "hf_subset": subset, "split": split}


def _datasets_cache() -> Path:
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "datasets"


def read(source: MtebSource, where: str) -> RawData:
    task, subset, split = _task(source, where)
    try:
        task.load_data()
    except Exception as e:  # datasets raises connection, file and value errors for absent data
        path, rev = task.metadata.dataset["path"], task.metadata.revision
        raise DataUnavailableError(
            f"{where}: mteb could not load task {source.task} ({path} at revision {rev}, subset {subset}, split "
            f"{split}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. mteb reads it through the "
            f"datasets cache, {_datasets_cache()} (HF_DATASETS_CACHE or $HF_HOME/datasets), and with HF_HUB_OFFLINE "
            f"set reads only that cache. Run `python -c \"import mteb; mteb.get_task('{source.task}').load_data()\"` "
            "on a machine with internet access and copy its datasets cache here, or unset HF_HUB_OFFLINE.") from None
    data = task.dataset[subset][split]
    titles = data["corpus"]["title"] if "title" in data["corpus"].column_names else [""] * len(data["corpus"])
    documents = [(str(i), t or "", x or "") for i, t, x in zip(data["corpus"]["id"], titles, data["corpus"]["text"])]
    queries = [(str(i), t or "") for i, t in zip(data["queries"]["id"], data["queries"]["text"])]
    judgments = [(str(q), str(d), int(g)) for q, docs in data["relevant_docs"].items() for d, g in docs.items()]
    top_ranked = data.get("top_ranked")
    candidates = {str(q): [str(d) for d in docs] for q, docs in top_ranked.items()} if top_ranked else None
    return RawData(documents=documents, queries=queries, judgments=judgments, candidates=candidates)
