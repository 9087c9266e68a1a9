"""The work as a grid of independent, resumable units: (suite, dataset, retriever).

A ``Unit`` is small and picklable and ``execute`` needs nothing but the unit and a results folder,
so a grid can be handed to any executor (a loop here, a distributed engine on a cluster). A unit
whose result already exists is skipped, which is what makes an interrupted grid resume.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import atomic, latency, locks, retrievers
from harness.data.load import load_dataset
from harness.data.model import Dataset
from harness.environment import PeakMemory, capture
from harness.errors import DataError, HarnessError, NonFiniteScoreError
from harness.hashing import file_sha256
from harness.metrics import Evaluation, evaluate
from harness.paths import harness_home
from harness.protocol import ProtocolCard
from harness.results import ResultRecord, ResultStore, now, result_key
from harness.retrievers.base import index_corpus
from harness.retrievers.params import check_params
from harness.runs import Run
from harness.suite import field_location, load_suite
from harness.suite_schema import DatasetSpec, Sample, Suite

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
    shard_tokens: int | None = None  # vectors per document shard, where the retriever shards; not in the key

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
    ties: dict | None = None  # the record's tie report
    unjudged_queries: int = 0  # run queries without judgments (imported runs), not scored


def plan(suite: Suite, datasets: list[str] | None = None, retriever_names: list[str] | None = None,
         sample: tuple[int | None, int | None] | None = None, latency_queries: int = 50,
         device: str | None = None, trust_remote_code: bool = False, shard_tokens: int | None = None) -> list[Unit]:
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
        check_retriever(suite, name, device, trust_remote_code, shard_tokens)
    return [Unit(str(suite.path), d, r, sample, latency_queries, device, trust_remote_code, shard_tokens)
            for d in names for r in chosen]


def check_retriever(suite: Suite, name: str, device: str | None = None, trust_remote_code: bool = False,
                    shard_tokens: int | None = None) -> None:
    """A configuration's parameters (names, types), then the values its class refuses (a ``dim``
    beyond the model's, an unknown ``storage``) by building it once: before any unit runs, not
    after the first units' encoding."""
    rspec = suite.retriever(name)
    cls = retrievers.resolve(rspec.class_)
    base = name if name in suite.retrievers else name.split("@")[0]

    def where(param: str | None) -> str:  # the suite file is read again only for a message
        if base not in suite.retrievers:
            return f"retriever {name!r} (registered class, default parameters)"
        if param is None or param not in rspec.params:
            return field_location(suite.path, ("retrievers", base))
        part = "sweep" if param in suite.retrievers[base].sweep else "params"
        return field_location(suite.path, ("retrievers", base, part, param))

    check_params(cls, rspec.params, where)
    try:
        retrievers.build(rspec.class_, retrievers.with_run_options(rspec.class_, rspec.params, device, trust_remote_code,
                                                                   shard_tokens))
    except HarnessError as e:
        message = f"{where(getattr(e, 'param', None))}: retriever {name!r}: {e}"
        try:
            located = type(e)(message)  # the same kind of error, with its place in the suite
        except TypeError:
            located = HarnessError(message)
        raise located from None


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
        filters={"dropped": dataset.report.dropped, "kept": dataset.report.kept, "checks": spec.checks.model_dump(mode="json"),
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
        return _execute(unit, suite, results, force)


def prepare(results: str | Path) -> None:
    """Before any work: the results folder and the caches can be written, and hold no leftovers
    of killed runs (``harness.atomic.sweep``; a live run's are left alone)."""
    atomic.check_writable(results, "The results folder", "Give --results a folder that can be created and written.")
    atomic.check_writable(harness_home(), "The harness's cache folder (HARNESS_HOME)",
                          "Set HARNESS_HOME to a folder that can be created and written.")
    atomic.sweep(results)
    atomic.sweep(harness_home())


def _execute(unit: Unit, suite: Suite, results: str | Path, force: bool) -> Outcome:
    spec = unit.spec(suite)
    rspec = suite.retriever(unit.retriever)
    store = ResultStore(results)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    memory = PeakMemory()  # from here: this unit's peak, not an earlier unit's in the same process
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
    set_depth = getattr(retriever, "set_depth", None)  # an approximate index's defaults follow the depth
    if set_depth is not None and spec.mode == "full":
        set_depth(_search_depth(spec))
    identity = {"name": unit.retriever, "class": retrievers.class_path(type(retriever)), "params": rspec.params}
    first, first_identity = _first_stage(suite, spec, unit)
    card = protocol_card(suite, spec, dataset, retriever.settings(), first_identity)
    key = result_key(card, identity)
    folder = store.folder(suite.name, spec.name, unit.retriever, key)
    existing = None if force else store.existing(folder)  # a damaged folder: a warning, then redone
    if existing is not None:
        log.info("%s/%s/%s: result exists, skipped (use --force to redo)", suite.name, spec.name, unit.retriever)
        return Outcome(unit, "skipped", folder, existing.metrics, existing.main_metric, existing.ties)

    documents = dataset.corpus.documents(spec.text.document_fields, spec.text.separator)
    where = f"{suite.name}/{spec.name}/{unit.retriever}"
    log.info("%s: indexing %d documents", where, len(documents))
    t = time.perf_counter()
    index_corpus(retriever, documents)
    timings["index_s"] = time.perf_counter() - t

    log.info("%s: searching for %d queries", where, len(dataset.queries))
    t = time.perf_counter()
    run, candidates = _retrieve(retriever, dataset, spec, first)
    timings["search_s"] = time.perf_counter() - t
    scored = getattr(retriever, "_scored_per_query", None)  # before latency queries replace it
    require_finite(run, f"Retriever {unit.retriever!r} on dataset {spec.name!r} of suite {suite.name!r}")
    queries_per_s = len(dataset.queries) / timings["search_s"] if timings["search_s"] > 0 else None
    run = apply_protocol(run, spec)
    run.name = unit.retriever

    log.info("%s: evaluating", where)
    t = time.perf_counter()
    evaluation = evaluate(dataset.qrels, run, spec.metrics, spec.main_metric)
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
        cost={**cost, "peak_rss_bytes": memory.bytes(), "peak_rss_scope": memory.scope},
        ties=tie_record(evaluation, "trec_eval"), environment=capture(), created=now(),
        vs_exact=_vs_exact(suite, spec, unit, rspec, dataset, card, first_identity, documents, run, evaluation,
                           scored, cost, results),
        vs_fp32=_vs_fp32(card, spec, evaluation, results),
    )
    log.info("%s: writing the result", where)
    folder = store.write(record, evaluation, run, force=force)
    return Outcome(unit, "done", folder, evaluation.mean, spec.main_metric, record.ties)


def _vs_exact(suite, spec, unit, rspec, dataset, card, first_identity, documents, run, evaluation, scored, cost,
              results) -> dict | None:
    """An approximate index's loss against exact search of the same queries (harness/vs_exact.py)."""
    if "index" not in card.system or spec.mode != "full":
        return None
    from harness import vs_exact
    from harness.index.approximate import SETTING_NAMES

    params = {k: v for k, v in rspec.params.items() if k not in SETTING_NAMES}
    exact = retrievers.build(rspec.class_, retrievers.with_run_options(rspec.class_, params, unit.device,
                                                                       unit.trust_remote_code, unit.shard_tokens))
    exact.set_max_length(spec.max_length.query, spec.max_length.document)
    exact.set_language(spec.language)
    exact_card = protocol_card(suite, spec, dataset, exact.settings(), first_identity)

    def search() -> Run:
        index_corpus(exact, documents)
        return apply_protocol(exact.search(dataset.queries.ids, dataset.queries.texts, _search_depth(spec)), spec)

    exact_run, exact_cost, source = vs_exact.exact_reference(exact_card.card_hash, Path(results), spec.name,
                                                             harness_home(), search)
    exact_eval = evaluate(dataset.qrels, exact_run, [spec.main_metric], spec.main_metric)
    return vs_exact.loss(exact_run, run, exact_eval, evaluation, spec.main_metric, scored, cost, exact_cost, source)


def _vs_fp32(card, spec, evaluation, results) -> dict | None:
    """An int8 result's main metric against its stored fp32 counterpart's (harness/vs_fp32.py)."""
    if card.system.get("precision") != "int8":
        return None
    from harness import vs_fp32

    return vs_fp32.against_stored(card, spec.name, Path(results), evaluation.per_query[spec.main_metric],
                                  spec.main_metric)


def tie_record(evaluation: Evaluation, order: str) -> dict:
    """What a record keeps of the tie report: the counts, the bounds, and which order was scored."""
    return {"order": order, **evaluation.ties.to_dict()}


def require_finite(run: Run, what: str, fix: str = "Find where it comes from (a model's weights, a division by "
                   "a zero norm), then run it again.") -> None:
    """A NaN or infinite score ranks its document arbitrarily and would be scored as if it meant
    something: refuse the run, before anything is stored."""
    bad = [(q, d, s) for q, ranking in run.items() for d, s in ranking if not math.isfinite(s)]
    if bad:
        q, d, s = bad[0]
        raise NonFiniteScoreError(f"{what} gave {len(bad)} scores that are not finite numbers (the first: {s} for "
                                  f"query {q!r}, document {d!r}); nothing was stored. {fix}")


def _search_depth(spec: DatasetSpec) -> int:
    """One more than the depth when self-matches are removed afterwards, so the depth stays full."""
    return spec.depth + (1 if spec.remove_self_matches else 0)


def _run_params(rspec, unit: Unit) -> dict:
    return retrievers.with_run_options(rspec.class_, rspec.params, unit.device, unit.trust_remote_code,
                                       unit.shard_tokens)


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
        index_corpus(first, dataset.corpus.documents(spec.text.document_fields, spec.text.separator))
        first_run = first.search(queries.ids, queries.texts, spec.candidates.depth)
        require_finite(first_run, f"The first-stage retriever {spec.candidates.retriever!r} of dataset {spec.name!r}")
        candidates = {q: [d for d, _ in r] for q, r in first_run.items()}
    return retriever.rerank(queries.ids, queries.texts, candidates), candidates


def import_run(run_path: str | Path, suite_path: str | Path, dataset_name: str, name: str,
               results: str | Path = "results", force: bool = False, ties: str = "trec_eval") -> Outcome:
    """Evaluate someone else's TREC run under a suite's protocol and store it like any result.

    ``ties="rank"`` scores the file in its rank column's order, the one its system gave, instead
    of trec_eval's; that changes the scores, so it is part of the imported system's identity."""
    prepare(results)
    suite = load_suite(suite_path)
    spec = suite.dataset(dataset_name)
    run = Run.from_trec(run_path, name=name, ties=ties)  # a bad file or tie order fails before the data loads
    dataset = load_dataset(spec, suite.name)
    digest = file_sha256(run_path)
    # Only the non-default order is named, so imports from before the choice keep their keys.
    params = {"file_sha256": digest, **({"ties": ties} if ties != "trec_eval" else {})}
    identity = {"name": name, "class": "imported", "params": params}
    card = protocol_card(suite, spec, dataset, {"imported": params})
    key = result_key(card, identity)
    store = ResultStore(results)
    require_finite(run, f"The run file {run_path}", fix="Correct or regenerate the file, then import it again.")
    run = apply_protocol(run, spec)
    evaluation = evaluate(dataset.qrels, run, spec.metrics, spec.main_metric)
    record = ResultRecord(
        key=key, suite=suite.name, dataset=spec.name, retriever=identity, origin="imported",
        protocol=card.to_dict(), protocol_hash=card.protocol_hash, card_hash=card.card_hash,
        main_metric=spec.main_metric, metrics=evaluation.mean, n_queries=len(evaluation.query_ids),
        timings={}, ties=tie_record(evaluation, ties), environment=capture(), created=now(),
    )
    unit = Unit(str(suite_path), dataset_name, name)
    if not force:  # a damaged earlier import is named here, then replaced by the write
        store.existing(store.folder(suite.name, spec.name, name, key))
    try:
        folder = store.write(record, evaluation, run, force=force)
    except FileExistsError as e:
        return Outcome(unit, "skipped", Path(str(e)), evaluation.mean, spec.main_metric, record.ties,
                       evaluation.unjudged_queries)
    return Outcome(unit, "done", folder, evaluation.mean, spec.main_metric, record.ties, evaluation.unjudged_queries)
