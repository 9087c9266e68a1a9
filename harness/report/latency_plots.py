"""Latency plots: per-query search latency per retriever (p50 bars, p95 whiskers) and search
latency against corpus size, for the results that recorded them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from matplotlib.patches import Patch

from harness.report.figures import (STYLE, Plot, Point, colors_for, legend_outside, plain_log_ticks, plt, safe_name,
                                    save_figure)
from harness.report.tables import natural_key
from harness.results import ResultRecord


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


def query_latency(section: tuple[str, str], points: list[Point], out: Path) -> Plot | None:
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
    colors = colors_for(series)
    width = 0.8 / len(series)
    with plt.rc_context(STYLE):
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
                patch.set_gid(f"bar-{safe_name(b[0])}-{safe_name(s)}")
        heights = [b[2] for b in bars] + [b[3] for b in bars if b[3] is not None]
        if max(heights) / max(min(heights), 1e-9) > 50:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
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
        legend_outside(ax, handles=handles)
        png, svg = save_figure(fig, out, f"latency-{safe_name(suite)}-{safe_name(dataset)}")
    missing = sorted(p.shown for p in points if p.shown not in labels)
    if missing:
        note += f" No latency recorded: {', '.join(missing)}."
    data = {s: [(b[0], b[2], b[3]) for b in bars if b[1] == s] for s in series}
    return Plot("latency", f"{suite}/{dataset}", title, png, svg, note.strip(), data=data)


def latency_vs_corpus_size(points: dict[tuple[str, str], list[Point]], out: Path) -> Plot | None:
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
    colors = colors_for(list(series))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, values in sorted(series.items(), key=lambda kv: natural_key(kv[0])):
            ns, p50 = [v[0] for v in values], [v[1] for v in values]
            upper = [(v[2] - v[1]) if v[2] is not None else 0 for v in values]
            ax.errorbar(ns, p50, yerr=[[0] * len(values), upper], marker="o", capsize=3, color=colors[label],
                        label=label, gid=f"corpus-{safe_name(label)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log_ticks(ax.xaxis)
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel("Corpus size (documents, log scale)")
        ax.set_ylabel("Search latency per query (ms, log scale)")
        title = "Search latency vs corpus size (p50, whisker p95)"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        legend_outside(ax)
        png, svg = save_figure(fig, out, "latency-vs-corpus-size")
    means = sorted(k for k, v in series.items() if any(s != "percentiles" for *_, s in v))
    note = f"Mean per query from the batch's total time, no percentiles: {', '.join(means)}." if means else ""
    return Plot("latency-corpus", "all suites", title, png, svg, note,
                data={k: [(n, p50, p95) for n, p50, p95, _ in v] for k, v in series.items()})
