"""How ``harness compare`` and ``harness regress`` print comparisons: number formats and rich tables.

Kept apart from the statistics (``harness.compare``), which the gate and reports use without rich.
"""

from __future__ import annotations

from harness import significance
from harness.compare import DatasetComparison, procedure
from harness.protocol import MISMATCH_MARK


def fmt_delta(value: float) -> str:
    return f"{value:+.4f}"


def fmt_ci(boot: significance.Bootstrap) -> str:
    return f"[{boot.low:+.4f}, {boot.high:+.4f}]"


def fmt_p(value: float) -> str:
    return f"{value:.4f}"


def marked_label(comp: DatasetComparison) -> str:
    return comp.label + (MISMATCH_MARK if comp.pair.protocol_differences() else "")


def comparison_tables(comparisons: list[DatasetComparison], resamples: int, seed: int) -> list:
    from rich.table import Table

    summary = Table(title="candidate vs baseline", title_justify="left")
    for col, justify in (("dataset", "left"), ("metric", "left"), ("baseline", "right"), ("candidate", "right"),
                         ("delta", "right"), ("95% CI", "right"), ("p", "right"), ("wins/losses/ties", "right"),
                         ("queries", "right")):
        summary.add_column(col, justify=justify, overflow="fold")
    for comp in comparisons:
        summary.add_row(marked_label(comp), comp.metric, f"{comp.baseline_mean:.4f}", f"{comp.candidate_mean:.4f}",
                        fmt_delta(comp.delta), fmt_ci(comp.bootstrap), fmt_p(comp.p_value),
                        f"{comp.wins}/{comp.losses}/{comp.ties}", str(comp.n_queries))
    out: list = [summary]
    for comp in comparisons:
        if not comp.changed:
            continue
        table = Table(title=f"{comp.label} ({comp.metric}): largest changes", title_justify="left")
        for col in ("query", "baseline", "candidate", "delta"):
            table.add_column(col, justify="left" if col == "query" else "right")
        for q in comp.changed:
            table.add_row(q.query_id, f"{q.baseline:.4f}", f"{q.candidate:.4f}", fmt_delta(q.delta))
        out.append(table)
    how = procedure(resamples, seed)
    out.append(f"delta: {how['delta']}; CI: {how['ci']}; p: {how['p_randomization']}.")
    if any(c.pair.protocol_differences() for c in comparisons):
        out.append(f"{MISMATCH_MARK} measured under different protocols (forced): the scores are not comparable.")
    return out
