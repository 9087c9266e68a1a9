"""Report plots (matplotlib, Agg), each written as PNG and SVG and readable without a caption:
a title, axis labels with units, a legend.

- quality vs storage per document (log x), Pareto frontier marked, per dataset;
- quality vs dimension for the Matryoshka sweeps (retrievers named ``base@dim=N``), per dataset;
- query latency, p50 with p95 whiskers, per retriever and dataset; latency vs corpus size;
- quality per language for multilingual suites.

SVGs keep their text as text (``svg.fonttype: none``), so titles and labels are searchable and
the HTML page can inline them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import EngFormatter, LogFormatter  # noqa: E402

from harness.report.pareto import pareto_frontier  # noqa: E402
from harness.report.tables import MISMATCH_MARK, Table, _row_labels, natural_key  # noqa: E402
from harness.results import ResultRecord  # noqa: E402

_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "late-interaction-harness", "font.size": 9,
          "axes.titlesize": 10, "figure.dpi": 100}
_DTYPE_MARKERS = {"float32": "o", "float16": "s", "bfloat16": "D", "int8": "^", "uint8": "^", "binary": "v"}
_METRIC_NAMES = {"ndcg": "nDCG", "recall": "Recall", "precision": "P", "mrr": "MRR", "map": "MAP",
                 "hit_rate": "Hit rate"}


@dataclass
class Plot:
    kind: str  # storage | dimension | latency | latency-corpus | languages
    section: str  # what it shows, e.g. "beir/scifact": groups the HTML page
    title: str
    png: Path
    svg: Path
    note: str = ""  # what the plot leaves out, and why
    frontier: tuple[str, ...] = ()  # storage plots: the results on the Pareto frontier, cheapest first
    # What is drawn, per series (a legend entry): (x, y) points or (label, y, whisker top) bars, so
    # that callers and tests can read the numbers behind the picture.
    data: dict[str, list[tuple]] = field(default_factory=dict)


def metric_name(metric: str) -> str:
    """``ndcg@10`` -> ``nDCG@10``: the metric as papers print it."""
    family, _, k = metric.partition("@")
    return _METRIC_NAMES.get(family, family) + (f"@{k}" if k else "")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _save(fig, out: Path, stem: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return png, svg


def _legend_outside(ax, **kwargs) -> None:
    """Right of the axes, so that it never hides data (``bbox_inches="tight"`` keeps it in the file)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7, borderaxespad=0, **kwargs)


def _plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (``3000``, ``20``), not ``3×10^3``; minor ticks are
    labelled only where a decade has too few major ones (LogFormatter's own rule)."""
    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


@dataclass
class _Point:
    """One result as the plots see it."""

    label: str
    record: ResultRecord
    score: float
    off_protocol: bool

    @property
    def cost(self) -> dict[str, Any]:
        return self.record.cost

    @property
    def dtype(self) -> str:
        system = self.record.protocol.get("system") or {}
        return str(self.cost.get("storage_dtype") or system.get("storage_dtype") or "not recorded")

    @property
    def shown(self) -> str:
        return self.label + (MISMATCH_MARK if self.off_protocol else "")


def _points(records: list[ResultRecord], metric: str | None) -> dict[tuple[str, str], list[_Point]]:
    """Per (suite, dataset), every result with its row label and its score in the plotted metric."""
    by_suite: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_suite[r.suite].append(r)
    out: dict[tuple[str, str], list[_Point]] = defaultdict(list)
    for suite, recs in by_suite.items():
        labels = _row_labels(recs)
        main = {d: Counter(r.protocol_hash for r in recs if r.dataset == d).most_common(1)[0][0]
                for d in {r.dataset for r in recs}}
        for r in recs:
            m = metric or r.main_metric
            if m in r.metrics:
                off = r.protocol_hash != main[r.dataset]
                out[(suite, r.dataset)].append(_Point(labels[r.key], r, r.metrics[m], off))
    for points in out.values():
        points.sort(key=lambda p: natural_key(p.label))
    return dict(sorted(out.items()))


def _metric_of(points: list[_Point], metric: str | None) -> str:
    return metric_name(metric or points[0].record.main_metric)


def _family(label: str) -> tuple[str, dict[str, str]]:
    """``minilm@dim=128,dtype=int8`` -> ("minilm", {"dim": "128", "dtype": "int8"})."""
    base, _, swept = label.partition("@")
    params = dict(p.split("=", 1) for p in swept.split(",") if "=" in p) if swept else {}
    return base, params


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(sorted(set(names), key=natural_key))}


def quality_vs_storage(section: tuple[str, str], points: list[_Point], out: Path, metric: str | None) -> Plot | None:
    measured = [p for p in points if (p.cost.get("bytes_per_document") or 0) > 0]
    if not measured:
        return None
    suite, dataset = section
    name = _metric_of(points, metric)
    xy = [(float(p.cost["bytes_per_document"]), 100 * p.score) for p in measured]
    frontier = pareto_frontier(xy)
    colors = _colors([_family(p.label)[0] for p in measured])
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        # Colour says which retriever family, the marker which storage dtype; the legend sits
        # outside the axes so that it never hides a point.
        # One artist per point, with an id naming it (``point-<label>``, ``frontier-<label>``), so
        # that the SVG says which results it shows and which lie on the frontier.
        for p, (x, y) in zip(measured, xy):
            ax.scatter([x], [y], s=36, zorder=3, marker=_DTYPE_MARKERS.get(p.dtype, "P"),
                       color=colors[_family(p.label)[0]], edgecolors="none", gid=f"point-{_safe(p.label)}")
        fx, fy = [xy[i][0] for i in frontier], [xy[i][1] for i in frontier]
        ax.step(fx, fy, where="post", color="black", linewidth=1, linestyle="--", zorder=2)
        for i in frontier:
            ax.scatter([xy[i][0]], [xy[i][1]], s=110, facecolors="none", edgecolors="black", linewidths=1.2,
                       zorder=4, gid=f"frontier-{_safe(measured[i].label)}")
        # Labels of the right-hand points go to their left, so that none runs into the legend.
        middle = (math.log(min(x for x, _ in xy)) + math.log(max(x for x, _ in xy))) / 2
        for p, (x, y) in zip(measured, xy):
            right = math.log(x) > middle
            ax.annotate(p.shown, (x, y), xytext=(-5 if right else 5, 4), textcoords="offset points", fontsize=7,
                        ha="right" if right else "left")
        handles = [Line2D([], [], color=color, marker="o", linestyle="", label=family)
                   for family, color in colors.items()]
        handles += [Line2D([], [], color="grey", marker=_DTYPE_MARKERS.get(d, "P"), linestyle="",
                           label=f"storage dtype: {d}") for d in sorted({p.dtype for p in measured})]
        handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=10,
                              linestyle="--", linewidth=1, label="Pareto frontier\n(nothing smaller scores higher)"))
        _legend_outside(ax, handles=handles)
        ax.set_xscale("log")
        ax.set_xlim(min(x for x, _ in xy) / 1.6, max(x for x, _ in xy) * 1.6)
        ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
        ax.set_xlabel("Storage per document (bytes, log scale)")
        ax.set_ylabel(f"{name} (×100)")
        title = f"{suite}/{dataset}: {name} vs storage per document"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        png, svg = _save(fig, out, f"storage-{_safe(suite)}-{_safe(dataset)}")
    missing = sorted(p.shown for p in points if p not in measured)
    note = f"Without a storage figure (not plotted): {', '.join(missing)}." if missing else ""
    return Plot("storage", f"{suite}/{dataset}", title, png, svg, note,
                tuple(measured[i].label for i in frontier),
                {p.label: [(x, y)] for p, (x, y) in zip(measured, xy)})


def quality_vs_dimension(section: tuple[str, str], points: list[_Point], out: Path, metric: str | None) -> Plot | None:
    sweeps: dict[str, list[tuple[int, float, _Point]]] = defaultdict(list)
    for p in points:
        base, params = _family(p.label)
        if "dim" in params:
            rest = ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "dim")
            dim = int(p.cost.get("dim") or params["dim"])
            sweeps[base + (f"@{rest}" if rest else "")].append((dim, 100 * p.score, p))
    sweeps = {k: sorted(v, key=lambda t: t[0]) for k, v in sweeps.items() if len({d for d, _, _ in v}) > 1}
    if not sweeps:
        return None
    suite, dataset = section
    name = _metric_of(points, metric)
    in_sweep = {id(p) for v in sweeps.values() for _, _, p in v}
    references = [p for p in points if id(p) not in in_sweep]
    colors = _colors(list(sweeps) + [p.label for p in references])
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for family, values in sorted(sweeps.items()):
            ax.plot([d for d, _, _ in values], [s for _, s, _ in values], marker="o", color=colors[family],
                    label=f"{family} (Matryoshka truncation)", gid=f"sweep-{_safe(family)}")
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
        _legend_outside(ax)
        png, svg = _save(fig, out, f"dimension-{_safe(suite)}-{_safe(dataset)}")
    data = {family: [(d, y) for d, y, _ in values] for family, values in sweeps.items()}
    data.update({p.label: [(None, 100 * p.score)] for p in references})
    return Plot("dimension", f"{suite}/{dataset}", title, png, svg, data=data)


def latency_of(record: ResultRecord, field: str = "search_latency_ms") -> tuple[dict[str, float], str] | None:
    """Per-query latency (ms) of one result and where it comes from: the recorded percentiles, or
    else the mean over the batch (total time / queries), which has no spread to show."""
    recorded = record.cost.get(field)
    if isinstance(recorded, dict) and recorded.get("p50") is not None:
        return {k: float(v) for k, v in recorded.items() if v is not None}, "percentiles"
    if field != "search_latency_ms" or not record.n_queries:
        return None
    if record.cost.get("search_s") is not None:
        return {"mean": 1000 * record.cost["search_s"] / record.n_queries}, "search mean"
    if record.timings.get("search_s") is not None:
        return {"mean": 1000 * record.timings["search_s"] / record.n_queries}, "encode+search mean"
    return None


def query_latency(section: tuple[str, str], points: list[_Point], out: Path) -> Plot | None:
    bars = []  # (label, series, value, p95 or None, source)
    for p in points:
        for name, series in (("search_latency_ms", "search"), ("query_latency_ms", "encode + search, one query")):
            found = latency_of(p.record, name)
            if found is None:
                continue
            values, source = found
            if source == "percentiles":
                bars.append((p.shown, series, values["p50"], values.get("p95"), source))
            else:
                series = "encode + search" if source == "encode+search mean" else series
                bars.append((p.shown, series, values["mean"], None, source))
    if not bars:
        return None
    suite, dataset = section
    labels = list(dict.fromkeys(b[0] for b in bars))
    series = list(dict.fromkeys(b[1] for b in bars))
    colors = _colors(series)
    width = 0.8 / len(series)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) + 2), 4.5))
        for j, s in enumerate(series):
            mine = [b for b in bars if b[1] == s]
            xs = [labels.index(b[0]) + (j - (len(series) - 1) / 2) * width for b in mine]
            heights = [b[2] for b in mine]
            upper = [(b[3] - b[2]) if b[3] is not None else 0.0 for b in mine]
            hatches = ["//" if b[4] != "percentiles" else "" for b in mine]
            container = ax.bar(xs, heights, width, color=colors[s])
            whiskers = [(x, h, u) for x, h, u, b in zip(xs, heights, upper, mine) if b[3] is not None]
            if whiskers:
                ax.errorbar([w[0] for w in whiskers], [w[1] for w in whiskers],
                            yerr=[[0] * len(whiskers), [w[2] for w in whiskers]], fmt="none", ecolor="black",
                            elinewidth=1, capsize=3)
            for patch, hatch, b in zip(container.patches, hatches, mine):
                patch.set_hatch(hatch)
                patch.set_gid(f"bar-{_safe(b[0])}-{_safe(s)}")
        heights = [b[2] for b in bars] + [b[3] for b in bars if b[3] is not None]
        if max(heights) / max(min(heights), 1e-9) > 50:
            ax.set_yscale("log")
            _plain_log_ticks(ax.yaxis)
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
        fallback = sorted({b[0] for b in bars if b[4] != "percentiles"})
        handles = [Patch(color=colors[s], label=s) for s in series]
        note = ""
        if fallback:
            note = (f"Hatched, no whisker: no percentiles recorded, mean per query from the batch's total "
                    f"time ({', '.join(fallback)}).")
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="mean over the batch"))
        # The note goes under the axis label, which matplotlib places below the tick labels.
        ax.set_xlabel("Retriever" + (f"\n{note}" if note else ""))
        ax.set_ylabel("Latency per query (ms)")
        title = f"{suite}/{dataset}: query latency (bar p50, whisker p95)"
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        _legend_outside(ax, handles=handles)
        png, svg = _save(fig, out, f"latency-{_safe(suite)}-{_safe(dataset)}")
    missing = sorted(p.shown for p in points if p.shown not in labels)
    if missing:
        note += f" No latency recorded: {', '.join(missing)}."
    data = {s: [(b[0], b[2], b[3]) for b in bars if b[1] == s] for s in series}
    return Plot("latency", f"{suite}/{dataset}", title, png, svg, note.strip(), data=data)


def latency_vs_corpus_size(points: dict[tuple[str, str], list[_Point]], out: Path) -> Plot | None:
    """Search latency against the number of documents, for retrievers measured at several sizes."""
    series: dict[str, list[tuple[int, float, float | None, str]]] = defaultdict(list)
    for ps in points.values():
        for p in ps:
            found, n = latency_of(p.record), p.cost.get("n_documents")
            if found and n:
                values, source = found
                series[p.label].append((int(n), values.get("p50", values.get("mean")), values.get("p95"), source))
    series = {k: sorted(v) for k, v in series.items() if len({n for n, *_ in v}) > 1}
    if not series:
        return None
    colors = _colors(list(series))
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, values in sorted(series.items(), key=lambda kv: natural_key(kv[0])):
            ns, p50 = [v[0] for v in values], [v[1] for v in values]
            upper = [(v[2] - v[1]) if v[2] is not None else 0 for v in values]
            ax.errorbar(ns, p50, yerr=[[0] * len(values), upper], marker="o", capsize=3, color=colors[label],
                        label=label, gid=f"corpus-{_safe(label)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.set_xlabel("Corpus size (documents, log scale)")
        ax.set_ylabel("Search latency per query (ms, log scale)")
        title = "Search latency vs corpus size (p50, whisker p95)"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        _legend_outside(ax)
        png, svg = _save(fig, out, "latency-vs-corpus-size")
    means = sorted(k for k, v in series.items() if any(s != "percentiles" for *_, s in v))
    note = f"Mean per query from the batch's total time, no percentiles: {', '.join(means)}." if means else ""
    return Plot("latency-corpus", "all suites", title, png, svg, note,
                data={k: [(n, p50, p95) for n, p50, p95, _ in v] for k, v in series.items()})


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
    colors = _colors(rows)
    width = 0.8 / len(rows)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(languages) * max(1, len(rows) / 2) + 2), 4.5))
        for j, row in enumerate(rows):
            present = [lang for lang in languages if lang in values[row]]
            xs = [languages.index(lang) + (j - (len(rows) - 1) / 2) * width for lang in present]
            ax.bar(xs, [values[row][lang] for lang in present], width, color=colors[row], label=row,
                   gid=f"language-{_safe(row)}")
        ax.set_xticks(range(len(languages)), languages)
        ax.set_xlabel("Language (code)")
        ax.set_ylabel(f"{name} (×100)")
        title = f"{table.title}: {name} per language"
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        _legend_outside(ax)
        png, svg = _save(fig, out, f"languages-{_safe(table.title)}")
    return Plot("languages", table.title, title, png, svg,
                data={row: [(lang, values[row][lang]) for lang in languages if lang in values[row]] for row in rows})


def make_plots(records: list[ResultRecord], tables: list[Table], out: str | Path,
               metric: str | None = None) -> list[Plot]:
    """Every plot the results allow, written under ``out``; a plot without data is skipped."""
    out = Path(out)
    points = _points(records, metric)
    plots: list[Plot | None] = []
    for section, ps in points.items():
        plots += [quality_vs_storage(section, ps, out, metric), quality_vs_dimension(section, ps, out, metric),
                  query_latency(section, ps, out)]
    plots.append(latency_vs_corpus_size(points, out))
    # The cross-suite matrix gets bars too when it spans several suites (else it repeats one).
    plots += [quality_per_language(t, out) for t in tables
              if t.kind == "suite" or (t.kind == "languages" and len({c.split("/")[0] for c, _ in t.cards}) > 1)]
    return [p for p in plots if p is not None]

