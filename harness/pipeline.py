"""The work as a grid of independent, resumable units: (suite, dataset, retriever).

A ``Unit`` is small and picklable and ``execute`` needs nothing but the unit and a results folder,
so a grid can be handed to any executor (a loop here, a distributed engine on a cluster). A unit
whose result already exists is skipped, which is what makes an interrupted grid resume.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import retrievers
from harness.data.load import load_dataset
from harness.data.model import Dataset
from harness.environment import capture, peak_rss_bytes
from harness.metrics import evaluate
from harness.protocol import ProtocolCard
from harness.results import ResultRecord, ResultStore, load_record, now, result_key
from harness.runs import Run
from harness.suite import DatasetSpec, Sample, Suite, load_suite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    suite_path: str
    dataset: str
    retriever: str
    sample: tuple[int | None, int | None] | None = None  # (queries, documents) for a smoke run

    def spec(self, suite: Suite) -> DatasetSpec:
        spec = suite.dataset(self.dataset)
        if self.sample is None:
            return spec
        return spec.model_copy(update={"sample": Sample(queries=self.sample[0], documents=self.sample[1])})


@dataclass(frozen=True)
class Outcome:
    unit: Unit
    status: Literal["done", "skipped"]
    folder: Path
    metrics: dict[str, float]
    main_metric: str


def plan(suite: Suite, datasets: list[str] | None = None, retriever_names: list[str] | None = None,
         sample: tuple[int | None, int | None] | None = None) -> list[Unit]:
    """Every (dataset, retriever) pair asked for; unknown names fail here, before any work."""
    names = datasets or list(suite.datasets)
    for name in names:
        suite.dataset(name)
    chosen = retriever_names or list(suite.retriever_configs()) or ["bm25"]
    for name in chosen:
        retrievers.resolve(suite.retriever(name).class_)
    return [Unit(str(suite.path), d, r, sample) for d in names for r in chosen]


def protocol_card(suite: Suite, spec: DatasetSpec, dataset: Dataset, system: dict) -> ProtocolCard:
    return ProtocolCard(
        suite=suite.name,
        dataset=spec.name,
        source=spec.source.model_dump(mode="json"),
        revision=dataset.revision,
        language=spec.language,
        split=spec.split,
        text=spec.text.model_dump(mode="json"),
        max_length=spec.max_length.model_dump(mode="json"),
        mode=spec.mode,
        candidates=spec.candidates.model_dump(mode="json") if spec.candidates else None,
        depth=spec.depth,
        remove_self_matches=spec.remove_self_matches,
        filters={"dropped": dataset.report.dropped, "checks": spec.checks.model_dump(mode="json"),
                 "sample": spec.sample.model_dump(mode="json") if spec.sample else None},
        metrics=spec.metrics,
        main_metric=spec.main_metric,
        system=system,
    )


def apply_protocol(run: Run, spec: DatasetSpec) -> Run:
    """What the suite does to every run before scoring, a retriever's or an imported one."""
    if spec.remove_self_matches:
        run = run.without_self_matches()
    return run.truncated(spec.depth)


def execute(unit: Unit, results: str | Path = "results", force: bool = False) -> Outcome:
    suite = load_suite(unit.suite_path)
    spec = unit.spec(suite)
    rspec = suite.retriever(unit.retriever)
    store = ResultStore(results)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    dataset = load_dataset(spec, suite.name)
    timings["load_data_s"] = time.perf_counter() - start
    retriever = retrievers.build(rspec.class_, rspec.params)
    retriever.set_max_length(spec.max_length.query, spec.max_length.document)
    identity = {"name": unit.retriever, "class": retrievers.class_path(type(retriever)), "params": rspec.params}
    card = protocol_card(suite, spec, dataset, retriever.settings())
    key = result_key(card, identity)
    folder = store.folder(suite.name, spec.name, unit.retriever, key)
    if store.exists(suite.name, spec.name, unit.retriever, key) and not force:
        existing = load_record(folder)
        log.info("%s/%s/%s: result exists, skipped (use --force to redo)", suite.name, spec.name, unit.retriever)
        return Outcome(unit, "skipped", folder, existing.metrics, existing.main_metric)

    texts = dataset.corpus.joined(spec.text.document_fields, spec.text.separator)
    t = time.perf_counter()
    retriever.index(dataset.corpus.ids, texts)
    timings["index_s"] = time.perf_counter() - t

    t = time.perf_counter()
    run = _retrieve(retriever, dataset, spec, suite, results)
    timings["search_s"] = time.perf_counter() - t
    run = apply_protocol(run, spec)
    run.name = unit.retriever

    t = time.perf_counter()
    evaluation = evaluate(dataset.qrels, run, spec.metrics)
    timings["evaluate_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start

    record = ResultRecord(
        key=key, suite=suite.name, dataset=spec.name, retriever=identity, protocol=card.to_dict(),
        protocol_hash=card.protocol_hash, card_hash=card.card_hash, main_metric=spec.main_metric,
        metrics=evaluation.mean, n_queries=len(evaluation.query_ids), timings=timings,
        cost={**retriever.cost(), "peak_rss_bytes": peak_rss_bytes()}, environment=capture(), created=now(),
    )
    folder = store.write(record, evaluation, run, force=force)
    return Outcome(unit, "done", folder, evaluation.mean, spec.main_metric)


def _retrieve(retriever, dataset: Dataset, spec: DatasetSpec, suite: Suite, results) -> Run:
    queries = dataset.queries
    if spec.mode == "full":
        k = spec.depth + (1 if spec.remove_self_matches else 0)
        return retriever.search(queries.ids, queries.texts, k)
    if spec.candidates.source == "dataset":
        candidates = dataset.candidates or {}
    else:
        first_spec = suite.retriever(spec.candidates.retriever)
        first = retrievers.build(first_spec.class_, first_spec.params)
        first.set_max_length(spec.max_length.query, spec.max_length.document)
        first.index(dataset.corpus.ids, dataset.corpus.joined(spec.text.document_fields, spec.text.separator))
        first_run = first.search(queries.ids, queries.texts, spec.candidates.depth)
        candidates = {q: [d for d, _ in r] for q, r in first_run.items()}
    return retriever.rerank(queries.ids, queries.texts, candidates)


def import_run(run_path: str | Path, suite_path: str | Path, dataset_name: str, name: str,
               results: str | Path = "results", force: bool = False) -> Outcome:
    """Evaluate someone else's TREC run under a suite's protocol and store it like any result."""
    import hashlib

    suite = load_suite(suite_path)
    spec = suite.dataset(dataset_name)
    dataset = load_dataset(spec, suite.name)
    digest = hashlib.sha256(Path(run_path).read_bytes()).hexdigest()
    identity = {"name": name, "class": "imported", "params": {"file_sha256": digest}}
    card = protocol_card(suite, spec, dataset, {"imported": {"file_sha256": digest}})
    key = result_key(card, identity)
    store = ResultStore(results)
    run = apply_protocol(Run.from_trec(run_path, name=name), spec)
    evaluation = evaluate(dataset.qrels, run, spec.metrics)
    record = ResultRecord(
        key=key, suite=suite.name, dataset=spec.name, retriever=identity, origin="imported",
        protocol=card.to_dict(), protocol_hash=card.protocol_hash, card_hash=card.card_hash,
        main_metric=spec.main_metric, metrics=evaluation.mean, n_queries=len(evaluation.query_ids),
        timings={}, environment=capture(), created=now(),
    )
    try:
        folder = store.write(record, evaluation, run, force=force)
    except FileExistsError as e:
        return Outcome(Unit(str(suite_path), dataset_name, name), "skipped", Path(str(e)), evaluation.mean, spec.main_metric)
    return Outcome(Unit(str(suite_path), dataset_name, name), "done", folder, evaluation.mean, spec.main_metric)
