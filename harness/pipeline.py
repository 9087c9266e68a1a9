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

from harness import atomic, latency, locks, retrievers
from harness.data.load import load_dataset
from harness.data.model import Dataset
from harness.environment import capture, peak_rss_bytes
from harness.errors import DataError
from harness.metrics import evaluate
from harness.paths import harness_home
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
    latency_queries: int = 50  # queries timed one at a time after the scored run (0: none)
    device: str | None = None  # where retrievers that take a device run; None: their own params
    trust_remote_code: bool = False  # retrievers that take it may run their checkpoint's own code

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
         sample: tuple[int | None, int | None] | None = None, latency_queries: int = 50,
         device: str | None = None, trust_remote_code: bool = False) -> list[Unit]:
    """Every (dataset, retriever) pair asked for; unknown names, and datasets the suite lists as
    unavailable, fail here, before any work. Asked for no dataset by name, the whole suite runs
    without its unavailable ones (a warning names them)."""
    if datasets:
        names = list(datasets)
        for name in names:
            suite.dataset(name).require_available(suite.name, suite.path)
    else:
        names = [n for n, spec in suite.datasets.items() if spec.unavailable is None]
        skipped = [n for n in suite.datasets if n not in names]
        if skipped:
            log.warning("suite %s: skipping %d unavailable datasets (%s); `harness list` says why",
                        suite.name, len(skipped), ", ".join(skipped))
    if device is not None:  # a device that is not there fails here, before any unit runs
        from harness.devices import resolve_device

        resolve_device(device)
    chosen = retriever_names or list(suite.retriever_configs()) or ["bm25"]
    for name in chosen:
        retrievers.resolve(suite.retriever(name).class_)
    return [Unit(str(suite.path), d, r, sample, latency_queries, device, trust_remote_code)
            for d in names for r in chosen]


def protocol_card(suite: Suite, spec: DatasetSpec, dataset: Dataset, system: dict,
                  first_stage: dict | None = None) -> ProtocolCard:
    candidates = None
    if spec.candidates:
        # Re-ranking a first stage's top-k: which first stage, exactly, is part of the protocol.
        candidates = {**spec.candidates.model_dump(mode="json"), **({"first_stage": first_stage} if first_stage else {})}
    return ProtocolCard(
        suite=suite.name,
        dataset=spec.name,
        group=spec.group,
        in_average=spec.in_average,
        source=spec.source.model_dump(mode="json"),
        revision=dataset.revision,
        language=spec.language,
        split=spec.split,
        text=spec.text.model_dump(mode="json"),
        max_length=spec.max_length.model_dump(mode="json"),
        mode=spec.mode,
        candidates=candidates,
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
    """Run one unit into ``results``, or skip it when its result is there. Runs of the same unit
    into one results folder take turns (a lock per unit): a second one waits, then finds the
    first's result and is skipped. Checks first that the folders can be written, and cleans up
    what killed runs left."""
    prepare(results)
    suite = load_suite(unit.suite_path)
    turn = ResultStore(results).folder(suite.name, unit.dataset, unit.retriever, "unit")
    with locks.hold(turn, f"another run of {suite.name}/{unit.dataset}/{unit.retriever} into {results}"):
        return _execute(unit, results, force)


def prepare(results: str | Path) -> None:
    """Before any work: the results folder and the caches can be written, and hold no leftovers
    of killed runs (``harness.atomic.sweep``; a live run's are left alone)."""
    atomic.check_writable(results, "The results folder", "Give --results a folder that can be created and written.")
    atomic.check_writable(harness_home(), "The harness's cache folder (HARNESS_HOME)",
                          "Set HARNESS_HOME to a folder that can be created and written.")
    atomic.sweep(results)
    atomic.sweep(harness_home())


def _execute(unit: Unit, results: str | Path, force: bool) -> Outcome:
    suite = load_suite(unit.suite_path)
    spec = unit.spec(suite)
    rspec = suite.retriever(unit.retriever)
    store = ResultStore(results)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    dataset = load_dataset(spec, suite.name)
    timings["load_data_s"] = time.perf_counter() - start
    if spec.mode == "rerank" and spec.candidates.source == "dataset" and not dataset.candidates:
        # Checked before any encoding: scoring empty candidate lists would silently give zeros.
        raise DataError(f"Dataset {spec.name!r} is in mode: rerank with candidates from the dataset, but its "
                        f"source ({spec.source.kind}) gave no candidate lists. Give the source's `candidates` "
                        "part, or take candidates from a first-stage retriever (candidates: {source: retriever}).")
    retriever = retrievers.build(rspec.class_, _run_params(rspec, unit))
    retriever.set_max_length(spec.max_length.query, spec.max_length.document)
    retriever.set_language(spec.language)
    identity = {"name": unit.retriever, "class": retrievers.class_path(type(retriever)), "params": rspec.params}
    first, first_identity = _first_stage(suite, spec, unit)
    card = protocol_card(suite, spec, dataset, retriever.settings(), first_identity)
    key = result_key(card, identity)
    folder = store.folder(suite.name, spec.name, unit.retriever, key)
    if store.exists(suite.name, spec.name, unit.retriever, key) and not force:
        existing = load_record(folder)
        log.info("%s/%s/%s: result exists, skipped (use --force to redo)", suite.name, spec.name, unit.retriever)
        return Outcome(unit, "skipped", folder, existing.metrics, existing.main_metric)

    texts = dataset.corpus.joined(spec.text.document_fields, spec.text.separator)
    where = f"{suite.name}/{spec.name}/{unit.retriever}"
    log.info("%s: indexing %d documents", where, len(texts))
    t = time.perf_counter()
    retriever.index(dataset.corpus.ids, texts)
    timings["index_s"] = time.perf_counter() - t

    log.info("%s: searching for %d queries", where, len(dataset.queries))
    t = time.perf_counter()
    run, candidates = _retrieve(retriever, dataset, spec, first)
    timings["search_s"] = time.perf_counter() - t
    queries_per_s = len(dataset.queries) / timings["search_s"] if timings["search_s"] > 0 else None
    run = apply_protocol(run, spec)
    run.name = unit.retriever

    log.info("%s: evaluating", where)
    t = time.perf_counter()
    evaluation = evaluate(dataset.qrels, run, spec.metrics)
    timings["evaluate_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start
    cost = {**retriever.cost(), "queries_per_s": queries_per_s}
    if unit.latency_queries:
        cost.update(latency.measure(retriever, dataset.queries.ids, dataset.queries.texts, _search_depth(spec),
                                    queries=unit.latency_queries, candidates=candidates))

    record = ResultRecord(
        key=key, suite=suite.name, dataset=spec.name, retriever=identity, protocol=card.to_dict(),
        protocol_hash=card.protocol_hash, card_hash=card.card_hash, main_metric=spec.main_metric,
        metrics=evaluation.mean, n_queries=len(evaluation.query_ids), timings=timings,
        cost={**cost, "peak_rss_bytes": peak_rss_bytes()}, environment=capture(), created=now(),
    )
    log.info("%s: writing the result", where)
    folder = store.write(record, evaluation, run, force=force)
    return Outcome(unit, "done", folder, evaluation.mean, spec.main_metric)


def _search_depth(spec: DatasetSpec) -> int:
    """One more than the depth when self-matches are removed afterwards, so the depth stays full."""
    return spec.depth + (1 if spec.remove_self_matches else 0)


def _run_params(rspec, unit: Unit) -> dict:
    return retrievers.with_run_options(rspec.class_, rspec.params, unit.device, unit.trust_remote_code)


def _first_stage(suite: Suite, spec: DatasetSpec, unit: Unit):
    """The first-stage retriever of a re-ranking dataset whose candidates come from one, and its
    identity for the protocol card; (None, None) otherwise."""
    if spec.mode != "rerank" or spec.candidates.source != "retriever":
        return None, None
    first_spec = suite.retriever(spec.candidates.retriever)
    first = retrievers.build(first_spec.class_, _run_params(first_spec, unit))
    first.set_max_length(spec.max_length.query, spec.max_length.document)
    first.set_language(spec.language)
    identity = {"name": spec.candidates.retriever, "class": retrievers.class_path(type(first)),
                "params": first_spec.params, "settings": first.settings()}
    return first, identity


def _retrieve(retriever, dataset: Dataset, spec: DatasetSpec, first) -> tuple[Run, dict[str, list[str]] | None]:
    """The run, and the candidates it re-ranked (None for full retrieval)."""
    queries = dataset.queries
    if spec.mode == "full":
        return retriever.search(queries.ids, queries.texts, _search_depth(spec)), None
    if spec.candidates.source == "dataset":
        candidates = dataset.candidates
    else:
        first.index(dataset.corpus.ids, dataset.corpus.joined(spec.text.document_fields, spec.text.separator))
        first_run = first.search(queries.ids, queries.texts, spec.candidates.depth)
        candidates = {q: [d for d, _ in r] for q, r in first_run.items()}
    return retriever.rerank(queries.ids, queries.texts, candidates), candidates


def import_run(run_path: str | Path, suite_path: str | Path, dataset_name: str, name: str,
               results: str | Path = "results", force: bool = False) -> Outcome:
    """Evaluate someone else's TREC run under a suite's protocol and store it like any result."""
    import hashlib

    prepare(results)
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
