"""Comparing two sets of stored results, dataset by dataset and query by query.

A side (baseline or candidate) is a result folder or a results root. Results pair by (suite,
dataset); where a side holds several results for one dataset (several retrievers, a sweep), they
pair by retriever name as well. Paired results must share a ``protocol_hash``, or their scores are
not comparable (``force`` compares them anyway, marked). The statistics are over the queries both
per-query files hold, for one metric (each dataset's main metric unless another is asked for).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import significance
from harness.errors import HarnessError, ProtocolMismatchError
from harness.protocol import MISMATCH_MARK, ProtocolCard
from harness.results import MANIFEST, PER_QUERY, RECORD, REPORTED, ResultRecord, load_per_query, load_record, result_folders

TIE = 1e-12  # per-query differences this small are float noise: a tie
# The mark report tables put on forced cross-protocol cells (harness.report.tables); not imported
# from there because the report package loads matplotlib, seconds of start-up for this command.


@dataclass(frozen=True)
class Result:
    folder: Path
    record: ResultRecord


def load_results(path: str | Path, role: str = "results") -> list[Result]:
    """A result folder (holding record.json), or every result under a results root."""
    path = Path(path)
    if (path / RECORD).is_file() or (path / MANIFEST).is_file():
        return [_load(path)]
    if not path.is_dir():
        raise HarnessError(f"The {role} {path} does not exist. Give a result folder (one holding {RECORD}) or a "
                           f"results root (<root>/<suite>/<dataset>/<retriever>/{RECORD}), e.g. results/.")
    folders = result_folders(path)  # the layout ResultStore writes
    if not folders:
        raise HarnessError(f"No results under the {role} {path}: expected <suite>/<dataset>/<retriever>/{RECORD} "
                           "below it, or a single result folder. Run `harness run` first, or point to the right folder.")
    # Reference rows (`harness import-mteb`) have no per-query scores to pair: reports show them.
    return [r for r in (_load(folder) for folder in folders) if r.record.origin != REPORTED]


def _load(folder: Path) -> Result:
    try:
        return Result(folder, load_record(folder))
    except (ValueError, OSError) as e:
        raise HarnessError(f"{folder / RECORD} is not a valid result record ({type(e).__name__}: "
                           f"{str(e).splitlines()[0]}). Re-run that result, or remove its folder.") from None


@dataclass(frozen=True)
class Pair:
    baseline: Result
    candidate: Result
    by_name: bool  # paired by retriever name, because a side has several results for the dataset

    @property
    def suite(self) -> str:
        return self.baseline.record.suite

    @property
    def dataset(self) -> str:
        return self.baseline.record.dataset

    @property
    def label(self) -> str:
        base = f"{self.suite}/{self.dataset}"
        return f"{base} [{self.baseline.record.label}]" if self.by_name else base

    def protocol_differences(self) -> list[str]:
        """Fields in which the two protocol cards differ; empty when the protocols match."""
        b, c = self.baseline.record, self.candidate.record
        if b.protocol_hash == c.protocol_hash:
            return []
        fields = ProtocolCard.model_validate(b.protocol).differences(ProtocolCard.model_validate(c.protocol))
        return fields or ["(protocol hash)"]


def match_results(baseline: list[Result], candidate: list[Result], *, force: bool = False,
                  require_all: bool = False) -> tuple[list[Pair], list[str]]:
    """Pairs, and notes on what was left unpaired. ``require_all``: every baseline result must
    find its candidate (the regression gate cannot pass a dataset it did not measure)."""
    groups_b, groups_c = _by_dataset(baseline), _by_dataset(candidate)
    pairs, notes = [], []
    for key in sorted(groups_b.keys() | groups_c.keys()):
        where = "/".join(key)
        b, c = groups_b.get(key, []), groups_c.get(key, [])
        if not c:
            if require_all:
                raise HarnessError(f"The candidate has no result for {where}, which the baseline has "
                                   f"({_names(b)}). Run the candidate on {where} too, or gate a baseline without it.")
            notes.append(f"{where}: only in the baseline ({_names(b)}); not compared.")
            continue
        if not b:
            notes.append(f"{where}: only in the candidate ({_names(c)}); not compared.")
            continue
        if len(b) == 1 and len(c) == 1:
            pairs.append(Pair(b[0], c[0], by_name=False))
            continue
        named_b, named_c = {r.record.label: r for r in b}, {r.record.label: r for r in c}
        common = sorted(named_b.keys() & named_c.keys())
        unpaired_b = sorted(named_b.keys() - named_c.keys())
        if len(named_b) < len(b) or len(named_c) < len(c) or not common or (require_all and unpaired_b):
            raise HarnessError(
                f"Cannot pair the results for {where}: the baseline has {_names(b)} and the candidate "
                f"{_names(c)}. Where a side holds several results for a dataset they pair by retriever name, "
                "once each. Point each side at a single result folder, or at a results root holding one result "
                "per dataset (or the same retriever names).")
        pairs.extend(Pair(named_b[name], named_c[name], by_name=True) for name in common)
        for name in unpaired_b:
            notes.append(f"{where}: {name} only in the baseline; not compared.")
        for name in sorted(named_c.keys() - named_b.keys()):
            notes.append(f"{where}: {name} only in the candidate; not compared.")
    if not pairs:
        raise HarnessError(f"The baseline and the candidate share no (suite, dataset): the baseline has "
                           f"{_datasets(groups_b)}, the candidate {_datasets(groups_c)}.")
    mismatched = [(p, p.protocol_differences()) for p in pairs]
    mismatched = [(p, fields) for p, fields in mismatched if fields]
    if mismatched and not force:
        described = "; ".join(
            f"{p.label}: baseline {p.baseline.folder} ({p.baseline.record.protocol_hash[:8]}) and candidate "
            f"{p.candidate.folder} ({p.candidate.record.protocol_hash[:8]}) differ in {', '.join(fields)}"
            for p, fields in mismatched)
        raise ProtocolMismatchError(
            f"Results measured under different protocols cannot be compared: {described}. Re-run the candidate "
            f"under the baseline's suite entry, or pass --force to compare them anyway (marked {MISMATCH_MARK}).")
    return pairs, notes


def _by_dataset(results: list[Result]) -> dict[tuple[str, str], list[Result]]:
    groups = defaultdict(list)
    for r in results:
        groups[(r.record.suite, r.record.dataset)].append(r)
    return groups


def _names(results: list[Result]) -> str:
    return ", ".join(sorted(r.record.label for r in results))


def _datasets(groups: dict) -> str:
    return ", ".join("/".join(k) for k in sorted(groups)) or "nothing"


@dataclass(frozen=True)
class PairedScores:
    query_ids: list[str]
    baseline: np.ndarray
    candidate: np.ndarray
    only_baseline: int = 0  # queries one side lacks (compared only under force)
    only_candidate: int = 0


def paired_scores(pair: Pair, metric: str, force: bool = False) -> PairedScores:
    """The two sides' per-query scores for ``metric``, aligned by query id (sorted)."""
    frames = []
    for role, result in (("baseline", pair.baseline), ("candidate", pair.candidate)):
        path = result.folder / PER_QUERY
        if not path.is_file():
            raise HarnessError(f"The {role} result {result.folder} has no {PER_QUERY}: significance needs its "
                               "per-query scores. Re-run it with `harness run --force` (or `harness import --force`).")
        frame = load_per_query(result.folder)
        if metric not in frame.columns or "query_id" not in frame.columns:
            have = ", ".join(c for c in frame.columns if c != "query_id")
            raise HarnessError(f"{path} has no per-query {metric!r} scores; it has {have}. Choose one of those "
                               "with --metric.")
        frames.append(frame[["query_id", metric]].astype({"query_id": str}))
    base, cand = frames
    ids_b, ids_c = set(base["query_id"]), set(cand["query_id"])
    only_b, only_c = ids_b - ids_c, ids_c - ids_b
    if (only_b or only_c) and not force:
        example = ", ".join(sorted(only_b | only_c)[:5])
        raise HarnessError(
            f"{pair.label}: the per-query files hold different queries ({len(only_b)} only in the baseline "
            f"{pair.baseline.folder}, {len(only_c)} only in the candidate {pair.candidate.folder}; e.g. {example}), "
            "although their protocols match, so one of them is stale or was edited. Re-run it, or pass --force to "
            "compare the common queries.")
    merged = base.merge(cand, on="query_id", suffixes=("_b", "_c")).sort_values("query_id", kind="stable")
    if merged.empty:
        raise HarnessError(f"{pair.label}: the baseline and the candidate share no query ids.")
    return PairedScores(merged["query_id"].tolist(), merged[f"{metric}_b"].to_numpy(np.float64),
                        merged[f"{metric}_c"].to_numpy(np.float64), len(only_b), len(only_c))


@dataclass(frozen=True)
class QueryChange:
    query_id: str
    baseline: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline


@dataclass(frozen=True)
class DatasetComparison:
    pair: Pair
    metric: str
    scores: PairedScores
    bootstrap: significance.Bootstrap
    p_value: float  # two-sided randomization test, H0: the systems do not differ
    wins: int  # queries where the candidate scores higher
    losses: int
    ties: int
    changed: list[QueryChange] = field(default_factory=list)  # largest |delta| first

    @property
    def label(self) -> str:
        return self.pair.label

    @property
    def n_queries(self) -> int:
        return len(self.scores.query_ids)

    @property
    def baseline_mean(self) -> float:
        return float(self.scores.baseline.mean())

    @property
    def candidate_mean(self) -> float:
        return float(self.scores.candidate.mean())

    @property
    def delta(self) -> float:
        return self.bootstrap.delta

    def to_dict(self) -> dict[str, Any]:
        b, c = self.pair.baseline, self.pair.candidate
        return {
            "suite": self.pair.suite, "dataset": self.pair.dataset, "label": self.label, "metric": self.metric,
            "baseline": {"retriever": b.record.label, "folder": str(b.folder), "protocol_hash": b.record.protocol_hash},
            "candidate": {"retriever": c.record.label, "folder": str(c.folder), "protocol_hash": c.record.protocol_hash},
            "protocol_differences": self.pair.protocol_differences(),
            "n_queries": self.n_queries, "queries_only_in_baseline": self.scores.only_baseline,
            "queries_only_in_candidate": self.scores.only_candidate,
            "baseline_mean": self.baseline_mean, "candidate_mean": self.candidate_mean, "delta": self.delta,
            "ci": [self.bootstrap.low, self.bootstrap.high], "confidence": self.bootstrap.confidence,
            "p_randomization": self.p_value, "wins": self.wins, "losses": self.losses, "ties": self.ties,
            "changed_most": [{"query_id": q.query_id, "baseline": q.baseline, "candidate": q.candidate,
                              "delta": q.delta} for q in self.changed],
        }


def compare_pair(pair: Pair, metric: str | None = None, *, force: bool = False, resamples: int = 10_000,
                 seed: int = 0, top: int = 10, confidence: float = 0.95) -> DatasetComparison:
    metric = (metric or pair.baseline.record.main_metric).strip().lower()
    scores = paired_scores(pair, metric, force=force)
    diff = scores.candidate - scores.baseline
    boot = significance.paired_bootstrap(scores.baseline, scores.candidate, resamples=resamples, seed=seed,
                                         confidence=confidence)
    p = significance.randomization_test(scores.baseline, scores.candidate, permutations=resamples, seed=seed)
    order = sorted((i for i in range(diff.size) if abs(diff[i]) > TIE), key=lambda i: (-round(abs(diff[i]), 9), scores.query_ids[i]))
    changed = [QueryChange(scores.query_ids[i], float(scores.baseline[i]), float(scores.candidate[i]))
               for i in order[:top]]
    return DatasetComparison(
        pair=pair, metric=metric, scores=scores, bootstrap=boot, p_value=p,
        wins=int(np.count_nonzero(diff > TIE)), losses=int(np.count_nonzero(diff < -TIE)),
        ties=int(np.count_nonzero(np.abs(diff) <= TIE)), changed=changed)


def compare_results(baseline: str | Path | list[Result], candidate: str | Path | list[Result], *,
                    metric: str | None = None, force: bool = False, require_all: bool = False,
                    resamples: int = 10_000, seed: int = 0, top: int = 10) -> tuple[list[DatasetComparison], list[str]]:
    """Every paired (suite, dataset) compared; notes name what was not paired."""
    if resamples < 100:
        raise HarnessError(f"--resamples {resamples} is too few for a confidence interval; use 10000 (the default).")
    if top < 0:
        raise HarnessError(f"--top {top}: give the number of changed queries to list (0 or more).")
    b = baseline if isinstance(baseline, list) else load_results(baseline, "baseline")
    c = candidate if isinstance(candidate, list) else load_results(candidate, "candidate")
    pairs, notes = match_results(b, c, force=force, require_all=require_all)
    comparisons = [compare_pair(p, metric, force=force, resamples=resamples, seed=seed, top=top) for p in pairs]
    for comp in comparisons:
        if comp.scores.only_baseline or comp.scores.only_candidate:
            notes.append(f"{comp.label}: compared on the {comp.n_queries} common queries ({comp.scores.only_baseline} "
                         f"only in the baseline, {comp.scores.only_candidate} only in the candidate; forced).")
    return comparisons, notes


def procedure(resamples: int, seed: int, confidence: float = 0.95) -> dict[str, Any]:
    return {
        "delta": "mean over queries of candidate minus baseline",
        "ci": f"{confidence:.0%} percentile paired bootstrap over queries, {resamples} resamples, seed {seed}",
        "p_randomization": (f"two-sided paired randomization test (random sign flips of the per-query "
                            f"differences), {resamples} assignments (exact when 2^n is fewer), seed {seed}"),
        "ties": f"per-query differences within {TIE:g}",
    }


def comparison_json(comparisons: list[DatasetComparison], notes: list[str], resamples: int, seed: int) -> dict[str, Any]:
    return {"procedure": procedure(resamples, seed), "datasets": [c.to_dict() for c in comparisons], "notes": notes}
