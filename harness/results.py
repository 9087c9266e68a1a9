"""The results store: one folder per (suite, dataset, retriever configuration).

    results/<suite>/<dataset>/<retriever>-<key>/
        record.json        metrics, protocol card and hashes, retriever, environment, timings
        per_query.parquet  every metric for every judged query
        run.trec.gz        the ranking, re-evaluable without the retriever

A folder is assembled under a temporary name and renamed into place, so a folder that exists is
complete, and an interrupted run leaves nothing that looks like a result (``harness.atomic``
cleans up after a killed one).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness import atomic, locks
from harness.metrics import Evaluation
from harness.hashing import sha256
from harness.protocol import ProtocolCard
from harness.runs import Run

RECORD = "record.json"
PER_QUERY = "per_query.parquet"
RUN = "run.trec.gz"


class ResultRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    key: str
    suite: str
    dataset: str
    retriever: dict[str, Any]  # name, class, params
    origin: str = "retriever"  # or "imported" for an external run file
    protocol: dict[str, Any]
    protocol_hash: str
    card_hash: str
    main_metric: str
    metrics: dict[str, float]
    n_queries: int
    timings: dict[str, float]
    cost: dict[str, Any] = {}  # the retriever's measurements: bytes, throughput, cache hit or miss
    environment: dict[str, Any]
    created: str

    @property
    def label(self) -> str:
        return self.retriever["name"]

    @property
    def main_score(self) -> float:
        return self.metrics[self.main_metric]


def result_key(card: ProtocolCard, retriever: dict[str, Any]) -> str:
    """Same data, protocol, retriever class and parameters -> same key -> the run is skipped."""
    return sha256({"card": card.card_hash, "class": retriever.get("class"), "params": retriever.get("params")})[:16]


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class ResultStore:
    def __init__(self, root: str | Path = "results"):
        self.root = Path(root)

    def folder(self, suite: str, dataset: str, name: str, key: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.root / suite / dataset / f"{safe}-{key[:12]}"

    def exists(self, suite: str, dataset: str, name: str, key: str) -> bool:
        return (self.folder(suite, dataset, name, key) / RECORD).is_file()

    def write(self, record: ResultRecord, evaluation: Evaluation, run: Run, force: bool = False) -> Path:
        final = self.folder(record.suite, record.dataset, record.label, record.key)
        with locks.hold(final, f"the result {final}"):  # also marks its temporaries as live
            return self._write(final, record, evaluation, run, force)

    def _write(self, final: Path, record: ResultRecord, evaluation: Evaluation, run: Run, force: bool) -> Path:
        if (final / RECORD).is_file() and not force:
            raise FileExistsError(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp, trash = atomic.temporary(final), None
        tmp.mkdir()
        try:
            run.to_trec(tmp / RUN)
            evaluation.to_frame().to_parquet(tmp / PER_QUERY, index=False)
            (tmp / RECORD).write_text(record.model_dump_json(indent=2), encoding="utf-8")
            if final.exists():  # forced: swap the old folder out, then delete it
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
        atomic.sweep(self.root)  # a result that a killed --force run had swapped out is back
        for path in sorted(self.root.glob(f"*/*/*/{RECORD}")):
            if any(part.startswith(".") for part in path.relative_to(self.root).parts):
                continue
            yield path.parent, load_record(path.parent)


def load_record(folder: str | Path) -> ResultRecord:
    return ResultRecord.model_validate(json.loads((Path(folder) / RECORD).read_text(encoding="utf-8")))


def load_per_query(folder: str | Path):
    import pandas as pd

    return pd.read_parquet(Path(folder) / PER_QUERY)
