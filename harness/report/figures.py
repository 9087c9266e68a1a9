"""What every report plot shares: the ``Plot`` it returns, matplotlib's style and file writing
(PNG and SVG), and the results as plotted points (``Point``, grouped by suite and dataset).

SVGs keep their text as text (``svg.fonttype: none``), so titles and labels are searchable and
the HTML page can inline them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

from harness.report.tables import MISMATCH_MARK, natural_key, row_labels  # noqa: E402
from harness.results import ResultRecord  # noqa: E402

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "late-interaction-harness", "font.size": 9,
         "axes.titlesize": 10, "figure.dpi": 100}
DTYPE_MARKERS = {"float32": "o", "float16": "s", "bfloat16": "D", "int8": "^", "uint8": "^", "binary": "v"}
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


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def save_figure(fig, out: Path, stem: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{stem}.png", out / f"{stem}.svg"
    fig.savefig(png, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return png, svg


def legend_outside(ax, **kwargs) -> None:
    """Right of the axes, so that it never hides data (``bbox_inches="tight"`` keeps it in the file)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=7, borderaxespad=0, **kwargs)


def plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (``3000``, ``20``), not ``3×10^3``; minor ticks are
    labelled only where a decade has too few major ones (LogFormatter's own rule)."""
    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


@dataclass
class Point:
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


def points_by_section(records: list[ResultRecord], metric: str | None) -> dict[tuple[str, str], list[Point]]:
    """Per (suite, dataset), every result with its row label and its score in the plotted metric."""
    by_suite: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_suite[r.suite].append(r)
    out: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for suite, recs in by_suite.items():
        labels = row_labels(recs)
        main = {d: Counter(r.protocol_hash for r in recs if r.dataset == d).most_common(1)[0][0]
                for d in {r.dataset for r in recs}}
        for r in recs:
            m = metric or r.main_metric
            if m in r.metrics:
                off = r.protocol_hash != main[r.dataset]
                out[(suite, r.dataset)].append(Point(labels[r.key], r, r.metrics[m], off))
    for points in out.values():
        points.sort(key=lambda p: natural_key(p.label))
    return dict(sorted(out.items()))


def metric_of(points: list[Point], metric: str | None) -> str:
    return metric_name(metric or points[0].record.main_metric)


def family_of(label: str) -> tuple[str, dict[str, str]]:
    """``minilm@dim=128,dtype=int8`` -> ("minilm", {"dim": "128", "dtype": "int8"})."""
    base, _, swept = label.partition("@")
    params = dict(p.split("=", 1) for p in swept.split(",") if "=" in p) if swept else {}
    return base, params


def colors_for(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(sorted(set(names), key=natural_key))}
