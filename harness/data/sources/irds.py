"""ir_datasets as a source. ir_datasets owns download and format parsing; this module only reads
its iterators, pins the revision, and turns a failed download into an actionable error."""

from __future__ import annotations

import difflib
import json
from importlib import metadata, resources
from pathlib import Path

from harness.data.sources import RawData
from harness.errors import DataUnavailableError, UnknownNameError
from harness.paths import ir_datasets_home


def _downloads_for(dataset_id: str) -> list[dict]:
    """ir_datasets' own download records (url, md5, cache path) behind a dataset id."""
    table = json.loads((resources.files("ir_datasets") / "etc" / "downloads.json").read_text())
    family, _, rest = dataset_id.partition("/")
    entries = table.get(family, {})
    first = rest.split("/")[0] if rest else ""
    keys = [k for k in entries if first and first in k.split("/")] or list(entries)
    found = []
    for key in sorted(keys):
        entry = entries[key]
        if isinstance(entry, dict) and "url" in entry:
            found.append({"key": key, "url": entry["url"], "md5": entry.get("expected_md5"),
                          "path": f"{family}/{entry.get('cache_path', key)}"})
    return found


def revision(dataset_id: str) -> dict:
    """The ir_datasets release and the checksums of the files it downloads for this id."""
    return {
        "ir_datasets": metadata.version("ir_datasets"),
        "files_md5": sorted(d["md5"] for d in _downloads_for(dataset_id) if d["md5"]),
    }


def _load(dataset_id: str, where: str):
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        close = difflib.get_close_matches(dataset_id, list(ir_datasets.registry), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"ir_datasets has no dataset {dataset_id!r} ({where}).{hint} "
            "`ir_datasets list` (or https://ir-datasets.com) shows the valid ids."
        ) from None


def read(dataset_id: str, where: str) -> RawData:
    dataset = _load(dataset_id, where)
    try:
        documents = [(d.doc_id, getattr(d, "title", "") or "", d.text or "") for d in dataset.docs_iter()]
        queries = [(q.query_id, q.text or "") for q in dataset.queries_iter()]
        judgments = [(j.query_id, j.doc_id, int(j.relevance)) for j in dataset.qrels_iter()]
    except (OSError, ConnectionError) as e:  # requests' errors derive from OSError
        raise _unavailable(dataset_id, where, e) from None
    return RawData(documents=documents, queries=queries, judgments=judgments)


def _unavailable(dataset_id: str, where: str, error: Exception) -> DataUnavailableError:
    home = ir_datasets_home()
    missing = [d for d in _downloads_for(dataset_id) if not (home / d["path"]).exists()]
    files = "; ".join(f"{home / d['path']} (md5 {d['md5']}, from {d['url']})" for d in missing[:4])
    more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    reason = str(error).split("(Caused by")[0].strip()
    return DataUnavailableError(
        f"The data of {dataset_id!r} ({where}) is not in the ir_datasets cache and could not be "
        f"downloaded ({type(error).__name__}: {reason}). ir_datasets reads IR_DATASETS_HOME, now "
        f"{home}. Either put the source files there ({files or 'see ir_datasets docs for ' + dataset_id}{more}), "
        "or set IR_DATASETS_HOME to a folder that already holds them, then run again."
    )


def cache_location() -> Path:
    return ir_datasets_home()
