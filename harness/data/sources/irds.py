"""ir_datasets as a source. ir_datasets owns download and format parsing; this module only reads
its iterators, pins the revision, and turns missing data into an actionable error, fast.

Which files a dataset needs is read off the dataset object itself (the ``Download`` records its
components hold), not guessed from ids: ``beir/webis-touche2020/v2`` needs the v2 zip only, and
``miracl/yo/dev`` the Yoruba corpus with the dev topics and qrels, not the test topics."""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

from harness import progress
from harness.data.sources import RawData
from harness.errors import DataUnavailableError, UnknownNameError
from harness.paths import ir_datasets_home

# One request decides whether the network can reach a missing file's server at all. Without it,
# a firewall that drops packets costs ir_datasets' retries: 3 tries x 15 s per file.
_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SourceFile:
    """One file ir_datasets downloads for a dataset: where it goes, its checksum, its address."""

    path: Path
    md5: str | None
    url: str | None
    local_copies: tuple[Path, ...] = ()  # other places ir_datasets reads it from (downloads/<md5>)

    def present(self) -> bool:
        return self.path.exists() or any(p.exists() for p in self.local_copies)


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


def _downloads(obj, seen: set[int], found: list) -> None:
    """The ``Download`` objects reachable from an ir_datasets dataset (docs, queries, qrels wrap
    them in extractors and caches; only ir_datasets' own objects are walked)."""
    from ir_datasets.util.download import Download

    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Download):
        found.append(obj)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            _downloads(item, seen, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _downloads(item, seen, found)
    elif type(obj).__module__.startswith("ir_datasets") and hasattr(obj, "__dict__"):
        for item in vars(obj).values():
            _downloads(item, seen, found)


@functools.lru_cache(maxsize=None)
def source_files(dataset_id: str) -> tuple[SourceFile, ...]:
    """The files behind a dataset id. Their paths are under the IR_DATASETS_HOME that ir_datasets
    read when it was first imported in this process."""
    from ir_datasets.util.download import LocalDownload

    found: list = []
    _downloads(_load(dataset_id, f"id {dataset_id!r}"), set(), found)
    files = {}
    for download in found:
        if download._cache_path is None:  # streamed, never stored: nothing to put in place
            continue
        urls = [m.url for m in download.mirrors if hasattr(m, "url")]
        local = tuple(Path(m._path) for m in download.mirrors if isinstance(m, LocalDownload))
        path = Path(download._cache_path)
        files[path] = SourceFile(path=path, md5=download.expected_md5, url=urls[0] if urls else None,
                                 local_copies=local)
    return tuple(files.values())


def revision(dataset_id: str) -> dict:
    """The checksums of the files ir_datasets downloads for this id: what is evaluated. Which
    ir_datasets release parsed them is in the result's environment and the Parquet cache's key."""
    try:
        files = source_files(dataset_id)
    except UnknownNameError:  # read() reports it, naming the dataset and suite that use the id
        files = ()
    return {"files_md5": sorted(f.md5 for f in files if f.md5)}


def read(dataset_id: str, where: str) -> RawData:
    dataset = _load(dataset_id, where)
    missing = [f for f in source_files(dataset_id) if not f.present()]
    if missing:
        failure = _unreachable(next((f.url for f in missing if f.url), None))
        if failure is not None:  # offline: say so now, before ir_datasets starts its retries
            raise _unavailable(dataset_id, where, failure)
    try:
        documents = [(d.doc_id, getattr(d, "title", "") or "", d.text or "")
                     for d in progress.counted(dataset.docs_iter(), f"reading {dataset_id}", _count(dataset), "docs")]
        queries = [(q.query_id, q.text or "") for q in dataset.queries_iter()]
        judgments = [(j.query_id, j.doc_id, int(j.relevance)) for j in dataset.qrels_iter()]
    except (OSError, ConnectionError) as e:  # requests' errors derive from OSError
        raise _unavailable(dataset_id, where, e) from None
    return RawData(documents=documents, queries=queries, judgments=judgments)


def _unreachable(url: str | None) -> Exception | None:
    """The error of one quick request to ``url``'s server, or None if the server answered at all
    (any HTTP status: ir_datasets then does the download, with its own retries and checksums)."""
    if url is None:
        return None
    import requests

    try:
        requests.head(url, timeout=_PROBE_TIMEOUT_S, allow_redirects=False).close()
    except requests.RequestException as e:
        return e
    return None


def _unavailable(dataset_id: str, where: str, error: Exception) -> DataUnavailableError:
    home = ir_datasets_home()
    missing = [f for f in source_files(dataset_id) if not f.present()]
    files = "; ".join(f"{f.path} (md5 {f.md5}, from {f.url})" for f in missing[:4])
    more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    reason = str(error).split("(Caused by")[0].strip()
    return DataUnavailableError(
        f"The data of {dataset_id!r} ({where}) is not in the ir_datasets cache and could not be "
        f"downloaded ({type(error).__name__}: {reason}). ir_datasets reads IR_DATASETS_HOME, now "
        f"{home}. Either put the source files there ({files or 'see ir_datasets docs for ' + dataset_id}{more}), "
        "or set IR_DATASETS_HOME to a folder that already holds them, then run again."
    )


def _count(dataset) -> int:
    """The corpus size ir_datasets states (0 when it states none: no progress is shown)."""
    try:
        return int(dataset.docs_count() or 0)
    except Exception:  # some datasets compute it by reading the corpus, or cannot
        return 0


def cache_location() -> Path:
    return ir_datasets_home()
