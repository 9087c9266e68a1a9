"""Report plots (matplotlib, Agg), each written as PNG and SVG and readable without a caption:
a title, axis labels with units, a legend.

- quality vs storage per document (log x), Pareto frontier marked, per dataset;
- quality vs dimension for the Matryoshka sweeps (retrievers named ``base@dim=N``), per dataset;
- query latency, p50 with p95 whiskers, per retriever and dataset; latency vs corpus size
  (harness/report/latency_plots.py);
- quality per language for multilingual suites.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter

from harness.report.figures import (DTYPE_MARKERS, STYLE, Plot, Point, colors_for, family_of, legend_outside,
                                    metric_name, metric_of, plt, points_by_section, safe_name, save_figure)
from harness.report.latency_plots import latency_vs_corpus_size, query_latency
from harness.report.pareto import pareto_frontier
from harness.report.tables import Table
from harness.results import ResultRecord


def quality_vs_storage(section: tuple[str, str], points: list[Point], out: Path, metric: str | None) -> Plot | None:
    measured = [p for p in points if (p.cost.get("bytes_per_document") or 0) > 0]
    if not measured:
        return None
    suite, dataset = section
    name = metric_of(points, metric)
    xy = [(float(p.cost["bytes_per_document"]), 100 * p.score) for p in measured]
    frontier = pareto_frontier(xy)
    colors = colors_for([family_of(p.label)[0] for p in measured])
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        # Colour says which retriever family, the marker which storage dtype; the legend sits
        # outside the axes so that it never hides a point.
        # One artist per point, with an id naming it (``point-<label>``, ``frontier-<label>``), so
        # that the SVG says which results it shows and which lie on the frontier.
        for p, (x, y) in zip(measured, xy):
            ax.scatter([x], [y], s=36, zorder=3, marker=DTYPE_MARKERS.get(p.dtype, "P"),
                       color=colors[family_of(p.label)[0]], edgecolors="none", gid=f"point-{safe_name(p.label)}")
        fx, fy = [xy[i][0] for i in frontier], [xy[i][1] for i in frontier]
        ax.step(fx, fy, where="post", color="black", linewidth=1, linestyle="--", zorder=2)
        for i in frontier:
            ax.scatter([xy[i][0]], [xy[i][1]], s=110, facecolors="none", edgecolors="black", linewidths=1.2,
                       zorder=4, gid=f"frontier-{safe_name(measured[i].label)}")
        # Labels of the right-hand points go to their left, so that none runs into the legend.
        middle = (math.log(min(x for x, _ in xy)) + math.log(max(x for x, _ in xy))) / 2
        for p, (x, y) in zip(measured, xy):
            right = math.log(x) > middle
            ax.annotate(p.shown, (x, y), xytext=(-5 if right else 5, 4), textcoords="offset points", fontsize=7,
                        ha="right" if right else "left")
        handles = [Line2D([], [], color=color, marker="o", linestyle="", label=family)
                   for family, color in colors.items()]
        handles += [Line2D([], [], color="grey", marker=DTYPE_MARKERS.get(d, "P"), linestyle="",
                           label=f"storage dtype: {d}") for d in sorted({p.dtype for p in measured})]
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=10,
                              linestyle="--", linewidth=1, label="Pareto frontier\n(nothing smaller scores higher)"))
        legend_outside(ax, handles=handles)
        ax.set_xscale("log")
        ax.set_xlim(min(x for x, _ in xy) / 1.6, max(x for x, _ in xy) * 1.6)
        ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
        ax.set_xlabel("Storage per document (bytes, log scale)")
        ax.set_ylabel(f"{name} (×100)")
        title = f"{suite}/{dataset}: {name} vs storage per document"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        png, svg = save_figure(fig, out, f"storage-{safe_name(suite)}-{safe_name(dataset)}")
    missing = sorted(p.shown for p in points if p not in measured)
    note = f"Without a storage figure (not plotted): {', '.join(missing)}." if missing else ""
    return Plot("storage", f"{suite}/{dataset}", title, png, svg, note,
                tuple(measured[i].label for i in frontier),
                {p.label: [(x, y)] for p, (x, y) in zip(measured, xy)})


def quality_vs_dimension(section: tuple[str, str], points: list[Point], out: Path, metric: str | None) -> Plot | None:
    sweeps: dict[str, list[tuple[int, float, Point]]] = defaultdict(list)
    for p in points:
        base, params = family_of(p.label)
        if "dim" in params:
            rest = ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "dim")
            dim = int(p.cost.get("dim") or params["dim"])
            sweeps[base + (f"@{rest}" if rest else "")].append((dim, 100 * p.score, p))
    sweeps = {k: sorted(v, key=lambda t: t[0]) for k, v in sweeps.items() if len({d for d, _, _ in v}) > 1}
    if not sweeps:
        return None
    suite, dataset = section
    name = metric_of(points, metric)
    in_sweep = {id(p) for v in sweeps.values() for _, _, p in v}
    references = [p for p in points if id(p) not in in_sweep]
    colors = colors_for(list(sweeps) + [p.label for p in references])
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for family, values in sorted(sweeps.items()):
            ax.plot([d for d, _, _ in values], [s for _, s, _ in values], marker="o", color=colors[family],
                    label=f"{family} (Matryoshka truncation)", gid=f"sweep-{safe_name(family)}")
        for p in references:
            ax.axhline(100 * p.score, color=colors[p.label], linestyle=":", linewidth=1,
                       label=f"{p.shown} (not swept, for reference)")
        dims = sorted({d for v in sweeps.values() for d, _, _ in v})
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("Dimension per vector (components, log₂ scale)")
        ax.set_ylabel(f"{name} (×100)")
        title = f"{suite}/{dataset}: {name} vs dimension"
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        legend_outside(ax)
        png, svg = save_figure(fig, out, f"dimension-{safe_name(suite)}-{safe_name(dataset)}")
    data = {family: [(d, y) for d, y, _ in values] for family, values in sweeps.items()}
    data.update({p.label: [(None, 100 * p.score)] for p in references})
    return Plot("dimension", f"{suite}/{dataset}", title, png, svg, data=data)


def quality_per_language(table: Table, out: Path) -> Plot | None:
    """Grouped bars for a multilingual suite table: one group per language, one bar per retriever;
    a language's value is the mean over the suite's columns in that language."""
    languages = sorted({lang for lang in table.column_languages.values() if lang})
    if len(languages) < 2:
        return None
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for row in table.rows:
        for language in languages:
            cols = [c for c, lang in table.column_languages.items() if lang == language]
            cells = [table.cells.get((row, c)) for c in cols]
            if all(v is not None for v in cells):
                values[row][language] = 100 * sum(cells) / len(cells)
    rows = [r for r in table.rows if values[r]]
    if not rows:
        return None
    metrics = set(table.column_metrics.values())
    name = metric_name(metrics.pop()) if len(metrics) == 1 else "main metric"
    colors = colors_for(rows)
    width = 0.8 / len(rows)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(languages) * max(1, len(rows) / 2) + 2), 4.5))
        for j, row in enumerate(rows):
            present = [lang for lang in languages if lang in values[row]]
            xs = [languages.index(lang) + (j - (len(rows) - 1) / 2) * width for lang in present]
            ax.bar(xs, [values[row][lang] for lang in present], width, color=colors[row], label=row,
                   gid=f"language-{safe_name(row)}")
        ax.set_xticks(range(len(languages)), languages)
        ax.set_xlabel("Language (code)")
        ax.set_ylabel(f"{name} (×100)")
        title = f"{table.title}: {name} per language"
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        legend_outside(ax)
        png, svg = save_figure(fig, out, f"languages-{safe_name(table.title)}")
    return Plot("languages", table.title, title, png, svg,
                data={row: [(lang, values[row][lang]) for lang in languages if lang in values[row]] for row in rows})


def make_plots(records: list[ResultRecord], tables: list[Table], out: str | Path,
               metric: str | None = None) -> list[Plot]:
    """Every plot the results allow, written under ``out``; a plot without data is skipped."""
    out = Path(out)
    points = points_by_section(records, metric)
    plots: list[Plot | None] = []
    for section, ps in points.items():
        plots += [quality_vs_storage(section, ps, out, metric), quality_vs_dimension(section, ps, out, metric),
                  query_latency(section, ps, out)]
    plots.append(latency_vs_corpus_size(points, out))
    # The cross-suite matrix gets bars too when it spans several suites (else it repeats one).
    plots += [quality_per_language(t, out) for t in tables
              if t.kind == "suite" or (t.kind == "languages" and len({c.split("/")[0] for c, _ in t.cards}) > 1)]
    return [p for p in plots if p is not None]
