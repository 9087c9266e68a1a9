"""The reports' "Δ vs exact" column and latency-vs-loss plot: what each approximate index result
(``record.vs_exact``, harness/vs_exact.py) lost against exact search of the same queries."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.report.pareto import pareto_frontier  # noqa: E402
from harness.report.figures import (STYLE, Plot, legend_outside, metric_name, plain_log_ticks,  # noqa: E402
                                    points_by_section, safe_name, save_figure)
from harness.report.tables import Table, result_id  # noqa: E402
from harness.results import ResultRecord  # noqa: E402



def delta_text(records: list[ResultRecord]) -> str:
    losses = [r.vs_exact for r in records if r.vs_exact]
    if not losses:
        return ""
    if len(losses) == 1:
        low, high = losses[0]["ci95"]
        return f"{100 * losses[0]['delta']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
    return f"{100 * sum(v['delta'] for v in losses) / len(losses):+.2f} (mean of {len(losses)})"


def attach_deltas(tables: list[Table], records: list[ResultRecord]) -> None:
    """Each table row's Δ vs exact over the results behind its cells (none: no column)."""
    by_id = {result_id(r): r for r in records}
    for table in tables:
        for row in table.rows:
            parts = [p for c in table.columns for p in table.parts.get((row, c), [])]
            text = delta_text([by_id[p.key] for p in parts if p.key in by_id])
            if text:
                table.deltas[row] = text


def latency_vs_loss(records: list[ResultRecord], out: Path, metric: str | None) -> list[Plot]:
    """Per dataset with approximate results: their search latency p50 (log) against their loss,
    exact search at 0, the Pareto frontier (lower latency, smaller loss) drawn through."""
    plots = []
    for (suite, dataset), points in points_by_section(records, metric).items():
        drawn = [(p.label, p.record.vs_exact["latency_ms"]["p50"], 100 * p.record.vs_exact["delta"])
                 for p in points if p.record.vs_exact and p.record.vs_exact.get("latency_ms")]
        if not drawn:
            continue
        references: dict[float, list[str]] = {}  # exact search's latency -> the indexes it is the reference of
        for p in points:
            exact = (p.record.vs_exact or {}).get("exact_latency_ms")
            if exact:
                references.setdefault(exact["p50"], []).append(p.label)
        for ms, of in references.items():
            drawn.append(("exact" if len(references) == 1 else f"exact (reference of {', '.join(of)})", ms, 0.0))
        frontier = pareto_frontier([(ms, delta) for _, ms, delta in drawn])
        with plt.rc_context(STYLE):
            main = metric_name(metric or points[0].record.main_metric)
            plots.append(_draw(suite, dataset, drawn, frontier, out, main))
    return plots


def _draw(suite: str, dataset: str, drawn: list[tuple[str, float, float]], frontier: list[int], out: Path,
          main: str) -> Plot:
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (label, ms, delta) in enumerate(drawn):
        ax.scatter([ms], [delta], s=36, zorder=3, label=label,
                   edgecolors="black" if i in frontier else "none")
    ax.plot([drawn[i][1] for i in frontier], [drawn[i][2] for i in frontier], "k--", lw=1, zorder=2,
            label="Pareto frontier")
    ax.axhline(0.0, color="#888", lw=0.8)
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel("search latency p50, one query (ms, log scale)")
    ax.set_ylabel(f"Δ {main} vs exact (×100)")
    ax.set_title(f"{suite}/{dataset}: latency against loss", fontsize=9)
    legend_outside(ax)
    png, svg = save_figure(fig, out, f"latency-vs-loss_{safe_name(suite)}_{safe_name(dataset)}")
    return Plot("latency-loss", f"{suite}/{dataset}",
                f"{suite}/{dataset}: search latency against the loss in {main} vs exact search", png, svg,
                note="Outlined and joined: the Pareto frontier (no other index is faster and loses less).",
                frontier=tuple(drawn[i][0] for i in frontier),
                data={label: [(ms, delta)] for label, ms, delta in drawn})
