"""``load_dataset``: suite entry -> checked ``Dataset``, through the Parquet cache."""

from __future__ import annotations

import logging

from harness.data import checks, store
from harness.data.model import Dataset
from harness.data.sources import get_source
from harness.errors import DataError
from harness.suite import DatasetSpec

log = logging.getLogger(__name__)


def load_dataset(spec: DatasetSpec, suite_name: str = "") -> Dataset:
    where = f"dataset {spec.name!r}" + (f" of suite {suite_name!r}" if suite_name else "")
    source = get_source(spec.source.kind)
    revision = source.revision(spec.source.id)
    path = store.entry_dir(spec.source.kind, spec.source.id, revision)
    raw = store.read(path)
    if raw is None:
        log.info("%s: reading %s %s", where, spec.source.kind, spec.source.id)
        raw = source.read(spec.source.id, where)
        store.write(path, raw, {"kind": spec.source.kind, "id": spec.source.id, "revision": revision})
    corpus, queries, qrels, report = checks.check(raw, spec.checks, where)
    _check_expected(spec, len(corpus), len(queries), qrels.n_judgments, where)
    return Dataset(
        name=spec.name, language=spec.language, corpus=corpus, queries=queries, qrels=qrels,
        candidates=raw.candidates, report=report, revision=revision,
    )


def _check_expected(spec: DatasetSpec, documents: int, queries: int, judgments: int, where: str) -> None:
    found = {"documents": documents, "queries": queries, "judgments": judgments}
    for field, want in spec.expected.model_dump().items():
        if want is not None and found[field] != want:
            raise DataError(
                f"{where}: the suite expects {want} {field} but {spec.source.kind} {spec.source.id!r} gave "
                f"{found[field]} (after checks). The data or the suite's `expected` counts are wrong: compare "
                "with the dataset's official files before trusting any score on it."
            )
