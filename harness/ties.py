"""Tied scores in a run: how many there are, and the orders that make a metric best and worst.

A tied group is a stretch of consecutive documents with equal scores in a query's ranking (in a
run ordered by score, all documents of one score). Any order within a group is as faithful to the
scores as trec_eval's; putting the higher grades first (optimistic) or last (pessimistic) within
every group bounds what the ties alone can do to a metric. Only groups whose documents differ in
grade can change a metric, so only the queries holding one are re-ordered.

The work is on flat numpy arrays over all queries, so it stays cheap on deep runs over many queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from harness.runs import Run


@dataclass(frozen=True)
class TieGroups:
    pairs: int  # scored (query, document) pairs
    tied_pairs: int  # of those, sharing their score with another document of the same query
    tied_groups: int  # groups of two or more documents with equal scores
    mixed_groups: int  # of those, groups whose documents differ in grade: the ones a metric feels
    queries_with_ties: int
    best: dict[str, list[str]]  # query -> ranking with higher grades first in each group (changed queries only)
    worst: dict[str, list[str]]  # query -> ranking with lower grades first in each group


@dataclass(frozen=True)
class TieReport:
    """The tie counts of an evaluation, and its main metric's mean over the best and worst tie orders."""

    metric: str
    pairs: int
    tied_pairs: int
    tied_groups: int
    mixed_groups: int
    queries_with_ties: int
    optimistic: float
    pessimistic: float

    def to_dict(self) -> dict:
        return asdict(self)


def tie_groups(run: Run, qrels: Mapping[str, Mapping[str, int]], query_ids: list[str],
               cutoff: int | None = None) -> TieGroups:
    """The tied groups of the given queries' rankings (unjudged documents have grade 0). The best and
    worst orders are of the queries where a group mixing grades starts above ``cutoff`` (the metric's
    k: nothing below it counts), cut at it."""
    rankings = [run.get(q, []) for q in query_ids]
    lengths = np.array([len(r) for r in rankings], dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return TieGroups(0, 0, 0, 0, 0, {}, {})
    docs = np.array([d for r in rankings for d, _ in r], dtype=object)
    scores = np.fromiter((s for r in rankings for _, s in r), dtype=np.float64, count=total)
    grades = np.zeros(total, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for i, q in enumerate(query_ids):
        judged = qrels[q] if q in qrels else {}
        if judged and lengths[i]:
            grades[offsets[i]:offsets[i + 1]] = [judged.get(d, 0) for d, _ in rankings[i]]
    query = np.repeat(np.arange(len(query_ids)), lengths)

    starts = np.ones(total, dtype=bool)
    starts[1:] = (scores[1:] != scores[:-1]) | (query[1:] != query[:-1])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)  # each group's first entry
    size = np.diff(np.append(first, total))
    tied = size[group] > 1
    mixed = np.minimum.reduceat(grades, first) != np.maximum.reduceat(grades, first)

    # Only groups starting above the cut-off can move the metric: re-order the queries holding a
    # mixed one, over the entries of such groups. Groups keep their places, so within each query
    # the re-ordered entries are its first ones.
    cut = total if cutoff is None else cutoff
    starts_above = (first - offsets[query[first]]) < cut
    changed = np.unique(query[first[mixed & starts_above]])
    keep = np.flatnonzero(np.isin(query, changed) & starts_above[group])
    orders = {}
    for side, key in (("best", -grades[keep]), ("worst", grades[keep])):
        entries = keep[np.lexsort((key, group[keep]))]
        bounds = np.flatnonzero(np.diff(query[entries])) + 1
        orders[side] = {query_ids[query[part[0]]]: docs[part[:cut]].tolist() for part in np.split(entries, bounds)
                        if part.size}
    return TieGroups(
        pairs=total,
        tied_pairs=int(tied.sum()),
        tied_groups=int((size > 1).sum()),
        mixed_groups=int(mixed.sum()),
        queries_with_ties=int(np.unique(query[tied]).size),
        best=orders["best"],
        worst=orders["worst"],
    )
