"""``harness report``: read the results store, build the tables, test against the baseline, and
write every format, the plots and the HTML page under one folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError
from harness.report import formats, html
from harness.report.marks import mark_significance
from harness.report.plots import make_plots
from harness.report.tables import build_tables, result_id
from harness.report.vs_exact import attach_deltas, latency_vs_loss
from harness.report.vs_fp32 import attach_int8_notes
from harness.results import REPORTED, ResultStore, load_per_query

FORMATS = {"markdown": "md", "latex": "tex", "csv": "csv", "html": "html"}


def _stem(metric: str | None, default: str) -> str:
    return default if metric is None else f"{default}-{metric.replace('@', '_at_')}"


def write_reports(results: str | Path, out: str | Path, formats_: list[str] | None = None, metric: str | None = None,
                  force: bool = False, baseline: str | None = None, plots: bool = True, alpha: float = 0.05,
                  permutations: int = 10_000) -> list[Path]:
    """Write the tables in ``formats_`` (default: all), ``significance.csv`` with a baseline, the
    plots (``plots/``; always with html, which embeds them) and return the paths written."""
    chosen = list(FORMATS) if formats_ is None else formats_
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise HarnessError(f"Unknown report format {unknown[0]!r}; choose from {', '.join(FORMATS)}.")
    found = list(ResultStore(results).records())
    if not found:
        raise HarnessError(f"No results under {results}: run `harness run` first, or point to the results folder.")
    records = [r for _, r in found]
    tables = build_tables(records, metric=metric, force=force)
    attach_deltas(tables, records)
    folders = {result_id(r): folder for folder, r in found}

    @lru_cache(maxsize=None)
    def scores(result_id: str):
        try:
            return load_per_query(folders[result_id])
        except (KeyError, FileNotFoundError):  # e.g. a result folder from before per-query files
            return None

    attach_int8_notes(tables, records, scores)
    if baseline:
        mark_significance(tables, baseline, scores, alpha=alpha, permutations=permutations)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(metric, "results")
    written = []

    def write(path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        written.append(path)

    for fmt in chosen:
        if fmt == "markdown":
            write(out / f"{stem}.md", "\n".join(formats.to_markdown(t) for t in tables))
        elif fmt == "latex":
            write(out / f"{stem}.tex", formats.to_latex(tables))
        elif fmt == "csv":
            write(out / f"{stem}.csv", "\n".join(formats.to_csv(t) for t in tables))
            if baseline:
                write(out / f"{_stem(metric, 'significance')}.csv", formats.significance_csv(tables))
    drawn = []
    if plots or "html" in chosen:
        folder = out / _stem(metric, "plots")
        # Reference rows carry no costs or per-query scores: the plots draw measured results only.
        measured = [r for r in records if r.origin != REPORTED]
        drawn = make_plots(measured, tables, folder, metric=metric) + latency_vs_loss(measured, folder, metric)
        written += [path for p in drawn for path in (p.png, p.svg)]
        # The plots folder is the report's: a plot the results no longer allow must not linger
        # beside the new ones (a page or paper would pick it up as current).
        for old in [*folder.glob("*.png"), *folder.glob("*.svg")]:
            if old not in written:
                old.unlink()
    if "html" in chosen:
        write(out / f"{_stem(metric, 'index')}.html", html.page(tables, drawn, out, Path(results).name or str(results)))
    return written
