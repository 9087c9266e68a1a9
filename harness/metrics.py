"""Metrics, computed by ranx on the run's order, averaged over every judged query.

A judged query that the run misses, or for which it retrieves nothing relevant, scores 0 and stays
in the mean. Every evaluation also counts the tied scores and bounds its main metric over their
orders (``harness.ties``). ranx is imported on first use (about 2 s: it imports scipy, pandas and
matplotlib); its numba kernels load from the cache that set-up fills (``warm_up``).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

from harness.data.model import Qrels
from harness.errors import DataError, UnknownNameError
from harness.runs import Run
from harness.ties import TieReport, tie_groups

# Metric families and whether they need a cut-off (``name@k``).
FAMILIES = {"ndcg": True, "recall": True, "precision": True, "mrr": False, "map": False, "hit_rate": True}
DEFAULT_METRICS = ["ndcg@10", "recall@100", "recall@1000", "mrr@10", "map@100"]
_NAME = re.compile(r"^(?P<family>[a-z_]+)(@(?P<k>[1-9][0-9]*))?$")


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; an unknown or malformed name is an error naming the choices."""
    m = _NAME.match(name.strip().lower())
    family = m.group("family") if m else None
    if not m or family not in FAMILIES or (FAMILIES[family] and m.group("k") is None):
        known = ", ".join(f"{f}@k" if cut else f"{f}[@k]" for f, cut in FAMILIES.items())
        raise UnknownNameError(f"Unknown metric {name!r}. Known metrics: {known} (for example ndcg@10, recall@100).")
    return family, int(m.group("k")) if m.group("k") else None


@dataclass(frozen=True)
class Evaluation:
    """Per-query scores and their means, for the given metrics, and how much tied scores could move them."""

    metrics: list[str]
    per_query: dict[str, dict[str, float]]  # metric -> query id -> score
    mean: dict[str, float]
    ties: TieReport | None = None
    unjudged_queries: int = 0  # queries of the run that have no judgments: not scored, counted

    @property
    def query_ids(self) -> list[str]:
        return list(self.per_query[self.metrics[0]]) if self.metrics else []

    def to_frame(self):
        import pandas as pd

        frame = pd.DataFrame({m: pd.Series(self.per_query[m]) for m in self.metrics})
        frame.index.name = "query_id"
        return frame.reset_index()


def evaluate(qrels: Qrels, run: Run, metrics: list[str], main_metric: str | None = None) -> Evaluation:
    """Score ``run`` against ``qrels`` over all judged queries; run queries without judgments are
    counted, not scored. A run that ranks nothing for any judged query is an error: its scores
    would be a silent 0.

    The tie report bounds ``main_metric`` (default: the first metric) over the orders of tied scores."""
    names = [m.strip().lower() for m in metrics]
    main = (main_metric or (names or DEFAULT_METRICS)[0]).strip().lower()
    for name in [*names, main]:
        parse_metric(name)
    _require_judged_rankings(qrels, run)
    judged = sorted(qrels)
    rankings = {q: [doc for doc, _ in run.get(q, [])] for q in judged}
    per_query = _per_query(qrels, rankings, names if main in names else [*names, main])

    groups = tie_groups(run, qrels, judged, cutoff=parse_metric(main)[1])
    bounds = {}
    for side, orders in (("optimistic", groups.best), ("pessimistic", groups.worst)):
        changed = _per_query(qrels, orders, [main])[main] if orders else {}
        bounds[side] = _mean({**per_query[main], **changed})  # same queries, same order of summation
    ties = TieReport(metric=main, pairs=groups.pairs, tied_pairs=groups.tied_pairs, tied_groups=groups.tied_groups,
                     mixed_groups=groups.mixed_groups, queries_with_ties=groups.queries_with_ties, **bounds)
    return Evaluation(metrics=names, per_query={m: per_query[m] for m in names},
                      mean={m: _mean(per_query[m]) for m in names}, ties=ties,
                      unjudged_queries=sum(q not in qrels for q in run))


def _per_query(qrels: Qrels, rankings: dict[str, list[str]], names: list[str]) -> dict[str, dict[str, float]]:
    """Each metric for each query of ``rankings``, scored on the order given."""
    import numpy as np
    import ranx  # lazy: numba start-up
    from numba.typed import List

    # ranx's kernels read, per query, (document, grade) rows in descending grade and (document,
    # score) rows in ranked order, as numba typed lists. They are built here, not through ranx's
    # Qrels and Run: those hold numba typed dicts, whose methods numba compiles again in every
    # process (about 5 s of CPU before the first score), where typed lists of arrays load from
    # numba's cache. Documents are numbered exactly (ranx would hash their ids), and a ranking gets
    # strictly decreasing scores, so ranx sees exactly the order given.
    number: dict[str, int] = {}
    judged, ranked = [], []
    for q, ranking in rankings.items():
        grades = sorted(qrels[q].items(), key=lambda item: -item[1])
        judged.append(np.array([(number.setdefault(d, len(number)), g) for d, g in grades],
                               dtype=np.float64).reshape(-1, 2))
        ranked.append(np.array([(number.setdefault(d, len(number)), len(ranking) - i) for i, d in enumerate(ranking)],
                               dtype=np.float64).reshape(-1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety chatter
        # Two names at least: ranx (0.3.x) looks a single metric's scores up under its family's name.
        scores = ranx.evaluate(List(judged), List(ranked), names * (2 if len(names) == 1 else 1), return_mean=False)
    return {m: {q: _clean(v) for q, v in zip(rankings, scores[m])} for m in names}


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0


def _require_judged_rankings(qrels: Qrels, run: Run) -> None:
    if not qrels:
        raise DataError("The judgments are empty: there is nothing to score the run against.")
    if any(run[q] for q in run if q in qrels):
        return
    if not run:
        raise DataError(f"Run {run.name!r} holds no queries; there is nothing to score.")
    if any(q in qrels for q in run):
        raise DataError(f"Run {run.name!r} ranks no document for any of its judged queries; every score "
                        "would be 0. Check the retriever or the run file.")
    raise DataError(
        f"Run {run.name!r} has {len(run)} queries and none of them has judgments (the run has ids such as "
        f"{_examples(run)}; the judgments {_examples(qrels)}), so every score would be 0. The run and the "
        "judgments are of different datasets or splits, or write the query ids differently.")


def _examples(ids, n: int = 3) -> str:
    return ", ".join(repr(q) for q in sorted(ids)[:n])


def _clean(value) -> float:
    value = float(value)
    return 0.0 if math.isnan(value) else value


def warm_up() -> None:
    """Compile and cache ranx's kernels once (run by set-up so the first real run is not slowed)."""
    qrels = Qrels({"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}})
    # Every family, so that none compiles in a user's first run.
    evaluate(qrels, Run({"q1": {"d1": 1.0, "d2": 0.5}, "q2": {"d4": 1.0}}),
             [*DEFAULT_METRICS, "precision@10", "hit_rate@10", "mrr", "map"])
