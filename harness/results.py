"""The results store: one folder per (suite, dataset, retriever configuration).

    results/<suite>/<dataset>/<retriever>-<key>/
        record.json        metrics, protocol card and hashes, retriever, environment, timings
        per_query.parquet  every metric for every judged query
        run.trec.gz        the ranking, re-evaluable without the retriever
        manifest.json      size and block checksums of the three files above; written last

A folder is assembled under a temporary name and renamed into place, so an interrupted run leaves
nothing that looks like a result. A folder is whole when its manifest verifies (harness/integrity.py):
reading a record or its per-query scores checks the folder first and raises ``DamagedResultError``
(the path and the fix) for a file cut short or overwritten since, or a folder without a manifest.
``harness run`` redoes a damaged result; the commands that read results refuse it. ``harness.atomic`` cleans up after a killed run.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness import atomic, integrity, locks, protocol
from harness.errors import CorruptFileError, NonFiniteScoreError
from harness.hashing import sha256
from harness.metrics import Evaluation
from harness.protocol import ProtocolCard
from harness.runs import Run

RECORD = "record.json"
PER_QUERY = "per_query.parquet"
RUN = "run.trec.gz"
MANIFEST = "manifest.json"
FILES = (RECORD, PER_QUERY, RUN)
# A reference row (`harness import-mteb`): numbers as reported elsewhere, a record without
# per-query scores or run; its manifest says so, and covers the record alone.
REPORTED = "reported"

log = logging.getLogger(__name__)


class DamagedResultError(CorruptFileError):
    """A result folder whose files do not match its manifest: one paragraph with the path and the fix."""

    def __init__(self, folder: Path, cause: CorruptFileError):
        self.folder, self.cause = folder, cause
        what = f"{Path(cause.path).name} {cause.reason}" if Path(cause.path).parent == folder else str(cause)
        super().__init__(folder, f"is damaged: {what}")
        self.args = (f"The result folder {folder} is damaged: {what}. Its numbers cannot be trusted, so nothing "
                     "was read from it. Redo it with `harness run` (which replaces a damaged result; `harness "
                     "import --force` for an imported run), or delete the folder.",)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.folder, self.cause)


class ResultRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    key: str
    suite: str
    dataset: str
    retriever: dict[str, Any]  # name, class, params
    origin: str = "retriever"  # "imported" for an external run file, "reported" for a reference row
    protocol: dict[str, Any]
    protocol_hash: str
    card_hash: str
    main_metric: str
    metrics: dict[str, float]
    n_queries: int
    timings: dict[str, float]
    cost: dict[str, Any] = {}  # the retriever's measurements: bytes, throughput, cache hit or miss
    # Tied scores within the depth and the main metric's optimistic and pessimistic means over their
    # orders (``harness.ties.TieReport``), with the order scored; None in records from before it.
    ties: dict[str, Any] | None = None
    environment: dict[str, Any]
    created: str
    # An approximate index's loss against exact search (harness/vs_exact.py); None for exact search.
    vs_exact: dict[str, Any] | None = None
    # precision int8 against the stored fp32 result of the same card (harness/vs_fp32.py); else None.
    vs_fp32: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.retriever["name"]

    @property
    def main_score(self) -> float:
        return self.metrics[self.main_metric]


def result_key(card: ProtocolCard, retriever: dict[str, Any]) -> str:
    """Same data, protocol, retriever class and parameters, and scoring code -> same key -> the run
    is skipped."""
    return sha256({"card": card.card_hash, "class": retriever.get("class"), "params": retriever.get("params"),
                   "scoring_version": protocol.SCORING_VERSION})[:16]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class ResultStore:
    def __init__(self, root: str | Path = "results"):
        self.root = Path(root)

    def folder(self, suite: str, dataset: str, name: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.root / suite / dataset / f"{safe}-{key[:12]}"

    def exists(self, suite: str, dataset: str, name: str, key: str) -> bool:
        """True when the result's folder is whole; a damaged one counts as absent."""
        return _whole(self.folder(suite, dataset, name, key))

    def existing(self, folder: Path) -> ResultRecord | None:
        """The record of the whole result at ``folder``; None when there is none, or when it is
        damaged, which is logged as a warning (the caller redoes it)."""
        if not folder.exists():
            return None
        try:
            return load_record(folder)
        except DamagedResultError as e:
            log.warning("result folder damaged: %s; redoing it", e.cause)
            return None

    def write(self, record: ResultRecord, evaluation: Evaluation, run: Run, force: bool = False) -> Path:
        final = self.folder(record.suite, record.dataset, record.label, record.key)
        with locks.hold(final, f"the result {final}"):  # also marks its temporaries as live
            return self._write(final, record, evaluation, run, force)

    def _write(self, final: Path, record: ResultRecord, evaluation: Evaluation, run: Run, force: bool) -> Path:
        if _whole(final) and not force:
            raise FileExistsError(final)
        _require_finite(record, evaluation, final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp, trash = atomic.temporary(final), None
        tmp.mkdir()
        try:
            run.to_trec(tmp / RUN)
            evaluation.to_frame().to_parquet(tmp / PER_QUERY, index=False)
            (tmp / RECORD).write_text(record.model_dump_json(indent=2), encoding="utf-8")
            integrity.write_manifest(tmp / MANIFEST, {"key": record.key}, FILES)
            if final.exists():  # forced, or damaged: swap the old folder out, then delete it
                trash = atomic.temporary(final, atomic.TRASH)
                os.replace(final, trash)
                os.replace(tmp, final)  # a kill just before this leaves the name empty: sweep() puts trash back
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if trash is not None and trash.exists() and not final.exists():
                os.replace(trash, final)  # interrupted mid-swap (Ctrl-C): the old result stays
            raise
        return final

    def records(self) -> Iterator[tuple[Path, ResultRecord]]:
        """Every result under the root; ``DamagedResultError`` stops at the first damaged one."""
        atomic.sweep(self.root)  # a result that a killed --force run had swapped out is back
        for folder in result_folders(self.root):
            yield folder, load_record(folder)


def result_folders(root: str | Path) -> list[Path]:
    """Folders ``<suite>/<dataset>/<retriever>`` under ``root`` holding a record or a manifest (so a
    folder that lost either is still found, and refused); folders being written or swapped out
    start with a dot."""
    root = Path(root)
    found = {p.parent for name in (RECORD, MANIFEST) for p in root.glob(f"*/*/*/{name}")}
    return sorted(f for f in found if not any(part.startswith(".") for part in f.relative_to(root).parts))


def stored_with_card(root: str | Path, card_hash: str, dataset: str) -> tuple[Path, ResultRecord] | None:
    """(folder, record) of the harness's own result under ``root`` with protocol card ``card_hash``
    on ``dataset`` (the reference an approximate or int8 result is compared with), or None. A
    damaged result is no reference: it is skipped."""
    for folder in result_folders(root):
        try:
            record = load_record(folder)
        except (CorruptFileError, OSError, ValueError):
            continue
        if record.card_hash == card_hash and record.dataset == dataset and record.origin == "retriever":
            return folder, record
    return None


def verify_result(folder: str | Path) -> None:
    """``DamagedResultError`` unless every file of the result folder matches its manifest."""
    folder = Path(folder)
    try:
        manifest = integrity.read_manifest(folder / MANIFEST, (RECORD,))
        missing = [] if manifest.get("origin") == REPORTED else [n for n in FILES if n not in manifest[integrity.FILES]]
        if missing:
            raise CorruptFileError(folder / MANIFEST, f"lists no checksum for {missing[0]}")
    except CorruptFileError as e:
        raise DamagedResultError(folder, e) from None


def load_record(folder: str | Path) -> ResultRecord:
    verify_result(folder)
    return ResultRecord.model_validate(json.loads((Path(folder) / RECORD).read_text(encoding="utf-8")))


def load_per_query(folder: str | Path):
    import pandas as pd

    verify_result(folder)
    return pd.read_parquet(Path(folder) / PER_QUERY)


def _whole(folder: Path) -> bool:
    try:
        verify_result(folder)
        return True
    except DamagedResultError:
        return False


def _require_finite(record: ResultRecord, evaluation: Evaluation, folder: Path) -> None:
    """A NaN or infinite metric is never stored (JSON would carry it as null, or not at all)."""
    bad = {m: v for m, v in record.metrics.items() if not math.isfinite(v)}
    bad |= {f"{m} of query {q}": v for m, scores in evaluation.per_query.items() for q, v in scores.items()
            if not math.isfinite(v)}
    if bad:
        name, value = next(iter(bad.items()))
        raise NonFiniteScoreError(f"The result for {folder} has {len(bad)} metric values that are not finite "
                                  f"numbers ({name} = {value}); nothing was stored. A metric is NaN only when "
                                  "the run or the judgments it was given are: check the retriever's scores.")
