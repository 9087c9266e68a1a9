"""MTEB's result files, both ways, through mteb's own result classes.

- ``export_mteb``: every stored result whose dataset maps to an MTEB task (the suite's ``mteb:``
  field) as MTEB writes it, ``<org>__<model>/<revision>/<Task>.json`` with ``scores -> split ->
  [{hf_subset, languages, main_score, ndcg_at_10, ...}]`` and a ``model_meta.json``. The main score
  is the task's own (``TaskMetadata.main_score``: nDCG@10 for BEIR, MIRACL and MLDR, MAP@1000 for
  JQaRAReranking); a result that did not measure it is not exported, and said so.
- ``import_mteb``: MTEB result files (a file, or a tree such as the public results repository's
  ``results/``) as reference rows in the results store (``origin: reported``): the numbers as
  reported, without per-query scores or runs, so reports show them beside the harness's rows with
  a mark and test no significance against them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import integrity
from harness.errors import FormatError, HarnessError
from harness.extras import require
from harness.hashing import sha256
from harness.metrics import parse_metric
from harness.results import MANIFEST, RECORD, REPORTED, ResultRecord, ResultStore, now
from harness.suite import find_suites, load_suite
from harness.suite_schema import DatasetSpec, Suite

_MTEB_METRIC = re.compile(r"^(ndcg|map|recall|precision|mrr|hit_rate)_at_(\d+)$")
NO_REVISION = "no_revision_available"  # what MTEB writes for a model without a known revision


def to_mteb_metric(name: str) -> str | None:
    family, k = parse_metric(name)
    return f"{family}_at_{k}" if k is not None else None


def from_mteb_metric(key: str) -> str | None:
    m = _MTEB_METRIC.match(key)
    return f"{m.group(1)}@{m.group(2)}" if m else None


def _mteb(needed_for: str):
    return require("mteb", needed_for)


def task_of(spec: DatasetSpec, needed_for: str):
    """(MTEB task object, hf_subset, split) of a dataset mapped to MTEB."""
    mteb = _mteb(needed_for)
    try:
        task = mteb.get_task(spec.mteb.task)
    except (KeyError, ValueError) as e:
        raise HarnessError(f"Dataset {spec.name!r}: `mteb.task` {spec.mteb.task!r} is not an MTEB task ({e}). "
                           "`mteb.get_tasks()` lists the names.") from None
    subsets = list(task.metadata.hf_subsets_to_langscripts)
    subset = spec.mteb.subset or (subsets[0] if len(subsets) == 1 else spec.language)
    if subset not in subsets:
        raise HarnessError(f"Dataset {spec.name!r}: MTEB task {spec.mteb.task} has no subset {subset!r}; its subsets "
                           f"are {', '.join(subsets)}. Set `mteb.subset` in the suite.")
    return task, subset, spec.mteb.split or spec.split


def suites_by_name(suites_dir: Path) -> dict[str, Suite]:
    found = {}
    for path in find_suites(suites_dir):
        try:
            suite = load_suite(path)
        except HarnessError:
            continue  # a broken suite file is reported by the commands that use it
        found.setdefault(suite.name, suite)
    return found


def model_name(record: ResultRecord) -> tuple[str, str]:
    """(MTEB model name, revision) of a result: ``<org>/<row label>``, the org the model id's
    (``harness`` for a system without a hub model), so a ``--model ORG/NAME`` row is ``ORG/NAME``."""
    model = str((record.retriever.get("params") or {}).get("model") or "")
    local = model.startswith((".", "/", "~")) or Path(model).exists()
    org = model.split("/")[0] if "/" in model and not local else ("local" if model else "harness")
    identity = ((record.protocol.get("system") or {}).get("model") or {})
    revision = identity.get("revision") or (identity.get("files_sha256") or "")[:12] or NO_REVISION
    return f"{org}/{record.label}", revision


@dataclass
class Exported:
    written: list[Path]
    notes: list[str]


def export_mteb(results: Path, out: Path, suites_dir: Path = Path("suites")) -> Exported:
    _mteb("harness export --format mteb")
    from mteb import TaskResult
    from mteb.models.model_meta import ModelMeta

    suites = suites_by_name(suites_dir)
    files: dict[tuple[str, str, str], dict[str, Any]] = {}
    notes = []
    for _, record in ResultStore(results).records():
        where = f"{record.suite}/{record.dataset} {record.label}"
        spec = suites.get(record.suite) and suites[record.suite].datasets.get(record.dataset)
        if record.origin == REPORTED:
            continue
        if not spec or spec.mteb is None:
            notes.append(f"{where}: no MTEB task (no `mteb:` for the dataset in {suites_dir}/); not exported.")
            continue
        if (record.protocol.get("filters") or {}).get("sample"):
            notes.append(f"{where}: a sampled (smoke) run, not the task's numbers; not exported.")
            continue
        task, subset, split = task_of(spec, "harness export --format mteb")
        main = task.metadata.main_score
        scores = {m: v for name, v in record.metrics.items() if (m := to_mteb_metric(name))}
        if main not in scores:
            notes.append(f"{where}: MTEB's main score of {task.metadata.name} is {main}, which this result did not "
                         f"measure (its metrics: {', '.join(record.metrics)}); add {from_mteb_metric(main) or main} "
                         "to the dataset's metrics to export it.")
            continue
        name, revision = model_name(record)
        entry = files.setdefault((name, revision, task.metadata.name), {"task": task, "scores": {}, "time": 0.0,
                                                                         "from": {}})
        if (split, subset) in entry["from"]:  # one file holds one score a (split, subset): never pick one silently
            raise HarnessError(
                f"Two results export to {name}'s {task.metadata.name} {split}/{subset}: {entry['from'][split, subset]} "
                f"and {record.key} ({where}). Remove one of the result folders, or run one under another name "
                "(`--name`, or another retriever name in the suite).")
        entry["from"][split, subset] = record.key
        entry["scores"].setdefault(split, {})[subset] = {**scores, "main_score": scores[main]}
        entry["time"] += float(sum(record.timings.values()))
    written = []
    for (name, revision, task_name), entry in sorted(files.items(), key=lambda item: item[0]):
        result = TaskResult.from_task_results(entry["task"], entry["scores"], evaluation_time=entry["time"])
        folder = out / name.replace("/", "__").replace(" ", "_") / revision
        folder.mkdir(parents=True, exist_ok=True)
        result.to_disk(folder / f"{task_name}.json")
        meta = ModelMeta.create_empty({"name": name, "revision": revision})
        (folder / "model_meta.json").write_text(json.dumps(meta.to_dict(), default=str, indent=4), encoding="utf-8")
        written.append(folder / f"{task_name}.json")
    return Exported(written, notes)


# -- import ---------------------------------------------------------------------------------------

def _result_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HarnessError(f"{path}: no such file or folder. Give an MTEB result file (<Task>.json) or a folder of "
                           "them (<org>__<model>/<revision>/<Task>.json, as MTEB's results repository holds them).")
    return sorted(p for p in path.rglob("*.json") if p.name != "model_meta.json")


def _model_of(file: Path) -> tuple[str, str]:
    """(model name, revision) from ``model_meta.json`` beside the file, else the folder names."""
    meta = file.parent / "model_meta.json"
    if meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("name"):
            return str(data["name"]), str(data.get("revision") or file.parent.name)
    return file.parent.parent.name.replace("__", "/", 1), file.parent.name


def import_mteb(path: Path, results: Path, suites_dir: Path = Path("suites")) -> tuple[list[Path], list[str]]:
    """Reference rows for every (split, subset) of every file that a suite dataset maps to."""
    _mteb("harness import-mteb")
    from mteb import TaskResult

    targets: dict[tuple[str, str, str], list[tuple[Suite, DatasetSpec]]] = {}
    for suite in suites_by_name(suites_dir).values():
        for spec in suite.datasets.values():
            if spec.mteb is not None:
                task, subset, split = task_of(spec, "harness import-mteb")
                targets.setdefault((task.metadata.name, split, subset), []).append((suite, spec))
    store, written, notes = ResultStore(results), [], []
    for file in _result_files(path):
        try:
            result = TaskResult.from_disk(file)
        except Exception as e:  # mteb raises pydantic's and json's errors
            raise FormatError(f"{file}: not an MTEB result file ({type(e).__name__}: {str(e).splitlines()[0]}). "
                              "Give the <Task>.json files MTEB writes.") from None
        model, revision = _model_of(file)
        matched = False
        for split, entries in result.scores.items():
            for entry in entries:
                for suite, spec in targets.get((result.task_name, split, entry["hf_subset"]), []):
                    written.append(_write_reference(store, suite, spec, result, split, entry, model, revision, file))
                    matched = True
        if not matched:
            notes.append(f"{file}: {result.task_name} ({', '.join(result.scores)}) is no dataset of the suites in "
                         f"{suites_dir}/ (their `mteb:` fields); not imported.")
    return written, notes


def _write_reference(store: ResultStore, suite: Suite, spec: DatasetSpec, result, split: str, entry: dict,
                     model: str, revision: str, file: Path) -> Path:
    metrics = {name: float(v) for k, v in entry.items() if (name := from_mteb_metric(k)) and isinstance(v, (int, float))}
    if not metrics:
        raise FormatError(f"{file}: the {split}/{entry['hf_subset']} scores of {result.task_name} hold no retrieval "
                          "metric (ndcg_at_k, map_at_k, recall_at_k, ...); give a retrieval task's result file.")
    main = spec.main_metric if spec.main_metric in metrics else next(iter(metrics))
    protocol = {"mteb": {"task": result.task_name, "dataset_revision": result.dataset_revision, "split": split,
                         "hf_subset": entry["hf_subset"], "mteb_version": result.mteb_version},
                "dataset": spec.name, "suite": suite.name, "language": spec.language}
    protocol_hash = sha256(protocol["mteb"])
    label = f"{model} (MTEB)"
    retriever = {"name": label, "class": REPORTED, "params": {"model": model, "revision": revision}}
    key = sha256({"protocol": protocol_hash, "retriever": retriever, "metrics": metrics})[:16]
    record = ResultRecord(key=key, suite=suite.name, dataset=spec.name, retriever=retriever, origin=REPORTED,
                          protocol=protocol, protocol_hash=protocol_hash, card_hash=protocol_hash, main_metric=main,
                          metrics=metrics, n_queries=0, timings={}, environment={"source_file": file.name},
                          created=now())
    folder = store.folder(suite.name, spec.name, label, key)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    integrity.write_manifest(folder / MANIFEST, {"key": key, "origin": REPORTED}, (RECORD,))
    return folder
