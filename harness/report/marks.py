"""Significance marks against a baseline row: a paired test per cell, Holm over the table.

Each cell of a row is tested against the baseline row's cell in the same column, on the per-query
scores of the results behind both (``Part``), paired by query id. A cell that averages several
datasets (a group, a language, the average column) is tested on the pooled queries, each query's
scores weighted so that the pooled mean is the cell's value: the same macro-average the table
prints, not one dominated by the largest dataset. The p-values of a table's cells form one family
for the Holm correction, so a table marks at most alpha's worth of false differences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.errors import HarnessError
from harness.report.tables import AVG, Cell, Significance, Table
from harness.significance import holm, randomization_test

BETTER, WORSE = "▲", "▼"

# Per-query scores of one result (columns query_id and the metrics), or None where it has none.
ScoreLoader = Callable[[str], "object | None"]


def resolve_baseline(table: Table, name: str) -> str | None:
    """The row called ``name``; a bare retriever name also finds its one ``name [config]`` row."""
    if name in table.rows:
        return name
    matches = [r for r in table.rows if r.split(" [")[0] == name]
    if len(matches) > 1:
        raise HarnessError(f"Baseline {name!r} is ambiguous in table {table.title}: it matches rows "
                           f"{', '.join(matches)}. Pass one of those labels to --baseline.")
    return matches[0] if matches else None


def paired_scores(table: Table, row: str, baseline: str, column: str,
                  scores: ScoreLoader) -> tuple[np.ndarray, np.ndarray] | None:
    """(baseline, candidate) arrays over the queries both have, weighted as the cell averages."""
    ours, theirs = table.cell_parts(row, column), table.cell_parts(baseline, column)
    if not ours or not theirs:
        return None
    theirs_by_dataset = {p.dataset: p for p in theirs}
    pieces = []
    for part in ours:
        other = theirs_by_dataset.get(part.dataset)
        a, b = scores(other.key) if other else None, scores(part.key)
        if a is None or b is None or part.metric not in b or other.metric not in a:
            return None
        joined = a[["query_id", other.metric]].merge(b[["query_id", part.metric]], on="query_id",
                                                     suffixes=("_baseline", "_candidate"))
        if joined.empty:
            return None
        pieces.append((part.weight, joined.iloc[:, 1].to_numpy(float), joined.iloc[:, 2].to_numpy(float)))
    total = sum(len(x) for _, x, _ in pieces)
    scale = [np.full(len(x), w * total / len(x)) for w, x, _ in pieces]
    return (np.concatenate([s * x for s, (_, x, _) in zip(scale, pieces)]),
            np.concatenate([s * y for s, (_, _, y) in zip(scale, pieces)]))


def mark_significance(tables: list[Table], baseline: str, scores: ScoreLoader, alpha: float = 0.05,
                      permutations: int = 10_000, seed: int = 0) -> None:
    """Set ``table.significance`` on every table; raise when no table has the baseline row."""
    resolved = {id(t): resolve_baseline(t, baseline) for t in tables}
    if not any(resolved.values()):
        rows = sorted({r for t in tables for r in t.rows})
        raise HarnessError(f"No table has a row {baseline!r} to use as --baseline; the rows are: {', '.join(rows)}.")
    for table in tables:
        base = resolved[id(table)]
        if base is None:
            table.significance = Significance(baseline, {}, {}, {},
                                              f"No significance marks: {baseline} has no results in this table.")
            continue
        tested: dict[Cell, tuple[float, float]] = {}
        for row in table.rows:
            if row == base:
                continue
            # With one column the average is that column: testing it again would only grow the family.
            for column in [*table.columns, AVG] if len(table.columns) > 1 else table.columns:
                pair = paired_scores(table, row, base, column, scores)
                if pair is not None:
                    b, c = pair
                    tested[(row, column)] = (randomization_test(b, c, permutations, seed), float(np.mean(c - b)))
        adjusted = dict(zip(tested, holm([p for p, _ in tested.values()]))) if tested else {}
        marks = {cell: BETTER if tested[cell][1] > 0 else WORSE for cell, p in adjusted.items() if p <= alpha}
        note = (f"{BETTER}/{WORSE}: significantly better/worse than {base} (two-sided paired randomization "
                f"test on per-query scores, {permutations:,} permutations; Holm correction over this table's "
                f"{len(tested)} comparisons, adjusted p ≤ {alpha:g}; cells that average datasets are tested on "
                f"their queries weighted as the average).")
        table.significance = Significance(base, marks, {c: v[0] for c, v in tested.items()},
                                          {c: float(p) for c, p in adjusted.items()}, note)
