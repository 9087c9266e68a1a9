"""``load_dataset``: suite entry -> checked ``Dataset``, through the Parquet cache."""

from __future__ import annotations

import logging
import random

from harness import locks
from harness.data import checks, store
from harness.data.model import Corpus, Dataset, Qrels, Queries
from harness.data.sources import RawData, get_source
from harness.errors import CorruptFileError, DataError
from harness.suite_schema import DatasetSpec, Sample

log = logging.getLogger(__name__)


def load_dataset(spec: DatasetSpec, suite_name: str = "") -> Dataset:
    where = f"dataset {spec.name!r}" + (f" of suite {suite_name!r}" if suite_name else "")
    spec.require_available(suite_name)
    source = get_source(spec.source.kind)
    revision = source.revision(spec.source)
    path = store.entry_dir(spec.source.kind, spec.source.id, revision)
    with locks.hold(path, f"another process reading {spec.source.kind} {spec.source.id} into the cache"):
        try:
            raw = store.read(path)  # after the wait: what that process cached
        except CorruptFileError as e:  # rebuilt from the source below; store.write replaces it
            log.warning("dataset cache damaged: %s; reading %s %s again into %s", e, spec.source.kind,
                        spec.source.id, path)
            raw = None
        if raw is None:
            log.info("%s: reading %s %s", where, spec.source.kind, spec.source.id)
            raw = source.read(spec.source, where)
            store.write(path, raw, {"kind": spec.source.kind, "id": spec.source.id, "revision": revision,
                                    "parsed_by": store.parsed_by(spec.source.kind)})
            del raw  # the source's rows in memory go; the corpus is read back from the cache in batches
            raw = store.read(path)
    _check_expected(spec, raw, where)
    corpus, queries, qrels, report = checks.check(raw, spec.checks, where)
    if spec.sample is not None:
        corpus, queries, qrels = sample(corpus, queries, qrels, spec.sample, raw.candidates)
    return Dataset(
        name=spec.name, language=spec.language, corpus=corpus, queries=queries, qrels=qrels,
        candidates=raw.candidates, report=report, revision=revision,
    )


def _check_expected(spec: DatasetSpec, raw: RawData, where: str) -> None:
    """Compare the source's rows, before any check drops one, with the suite's `expected`: the
    official files' own counts (every judgment line, grade 0 included) and relevance grades.
    What the checks then drop is counted apart, in the protocol card."""
    want = spec.expected
    found = {"documents": len(raw.documents), "queries": len(raw.queries), "judgments": len(raw.judgments)}
    for field, count in found.items():
        expected = getattr(want, field)
        if expected is not None and count != expected:
            raise DataError(
                f"{where}: the suite expects {expected} {field} but {spec.source.kind} {spec.source.id!r} gave "
                f"{count} (as read, before the checks drop anything). The data or the suite's `expected` "
                "counts are wrong: compare with the dataset's official files before trusting any score on it."
            )
    grades = sorted({int(grade) for _, _, grade in raw.judgments})
    if want.grades is not None and grades != want.grades:
        raise DataError(
            f"{where}: the suite expects relevance grades {want.grades} but the judgments of "
            f"{spec.source.kind} {spec.source.id!r} use {grades}. The data or the suite's `expected.grades` "
            "are wrong: compare with the dataset's official qrels before trusting any score on it."
        )


def sample(corpus: Corpus, queries: Queries, qrels: Qrels, spec: Sample,
           candidates: dict[str, list[str]] | None = None) -> tuple[Corpus, Queries, Qrels]:
    """Seeded subset: queries first, then a corpus that still holds every document they judge and
    every re-ranking candidate the dataset gives them (so a sampled re-ranking run scores its real
    candidates), plus random others up to ``spec.documents``."""
    rng = random.Random(spec.seed)
    query_ids = list(queries.ids)
    if spec.queries is not None and spec.queries < len(query_ids):
        chosen = set(rng.sample(query_ids, spec.queries))
        query_ids = [q for q in query_ids if q in chosen]
    qrels = Qrels({q: qrels[q] for q in query_ids})
    keep = set()
    if spec.documents is not None and spec.documents < len(corpus):
        in_corpus = set(corpus.ids)  # judgments may name documents absent from the corpus
        needed = {d for q in query_ids for d in qrels[q]} | {d for q in query_ids for d in (candidates or {}).get(q, [])}
        needed &= in_corpus
        others = [d for d in corpus.ids if d not in needed]
        keep = needed | set(rng.sample(others, max(0, min(len(others), spec.documents - len(needed)))))
    if keep:
        corpus = corpus.select([i for i, d in enumerate(corpus.ids) if d in keep])
    return corpus, queries.subset(query_ids), qrels
