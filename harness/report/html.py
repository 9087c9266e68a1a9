"""One static HTML page with every table and plot: it opens from disk with no server and no
network (plots inlined as SVG, each linked to its PNG and SVG files by relative path)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from harness.report.figures import Plot
from harness.report.formats import DELTA, caption
from harness.report.tables import AVG, Table, fmt

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 0.3rem; font-variant-numeric: tabular-nums; }
figure.table figcaption { max-width: 60rem; }
th, td { padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
td.avg, th.avg { border-left: 1px solid #aaa; }
.scroll { overflow-x: auto; }
figure { margin: 1.5rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.8rem; color: #555; }
nav li { font-size: 0.9rem; }
"""


def _cell(table: Table, row: str, column: str) -> str:
    text = html.escape(fmt(table.value(row, column)) + table.mark(row, column))
    rank = table.rank(row, column)
    text = f"<strong>{text}</strong>" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text
    return f'<td class="avg">{text}</td>' if column == AVG else f"<td>{text}</td>"


def table_html(table: Table, anchor: str) -> str:
    header = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    first = "Model" if table.kind == "languages" else "Retriever"
    delta = f"<th>{DELTA}</th>" if table.deltas else ""
    rows = "\n".join(f"<tr><td>{html.escape(r)}</td>{''.join(_cell(table, r, c) for c in [*table.columns, AVG])}"
                     + (f"<td>{html.escape(table.deltas.get(r, ''))}</td>" if table.deltas else "") + "</tr>"
                     for r in table.rows)
    # The caption is the figure's, not the <table>'s: a table caption is only as wide as the table.
    return (f'<section id="{anchor}">\n<h3>{html.escape(table.title)}</h3>\n<figure class="table">'
            f'<div class="scroll"><table>\n'
            f'<thead><tr><th>{first}</th>{header}<th class="avg">{AVG}</th>{delta}</tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody></table></div>\n<figcaption>{html.escape(caption(table))}</figcaption>"
            f"</figure>\n</section>")


def inline_svg(path: Path) -> str:
    """The SVG element of a file, without its XML prolog and doctype (not allowed inside HTML)."""
    text = path.read_text(encoding="utf-8")
    return text[text.index("<svg"):]


def _anchor(prefix: str, text: str) -> str:
    return prefix + "-" + re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def plot_html(plot: Plot, page_dir: Path, anchor: str) -> str:
    png, svg = (p.relative_to(page_dir).as_posix() for p in (plot.png, plot.svg))
    note = f" {html.escape(plot.note)}" if plot.note else ""
    links = f'Files: <a href="{html.escape(png)}">PNG</a>, <a href="{html.escape(svg)}">SVG</a>.'
    return (f'<figure id="{anchor}">\n{inline_svg(plot.svg)}\n<figcaption>{html.escape(plot.title)}.{note} '
            f"{links}</figcaption>\n</figure>")


def page(tables: list[Table], plots: list[Plot], page_dir: Path, results_name: str) -> str:
    table_ids = [_anchor(f"table{i}", t.title) for i, t in enumerate(tables)]
    plot_ids = [_anchor(f"plot{i}", p.title) for i, p in enumerate(plots)]
    nav = "\n".join([*(f'<li><a href="#{a}">Table: {html.escape(t.title)}</a></li>' for a, t in zip(table_ids, tables)),
                     *(f'<li><a href="#{a}">Plot: {html.escape(p.title)}</a></li>' for a, p in zip(plot_ids, plots))])
    sections = ["<h2>Tables</h2>", *(table_html(t, a) for t, a in zip(tables, table_ids))]
    if plots:
        sections.append("<h2>Plots</h2>")
        current = None
        for plot, anchor in zip(plots, plot_ids):
            if plot.section != current:
                current = plot.section
                sections.append(f"<h3>{html.escape(current)}</h3>")
            sections.append(plot_html(plot, page_dir, anchor))
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Retrieval results: {html.escape(results_name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>Retrieval results: {html.escape(results_name)}</h1>",
        "<p>Scores ×100. Each table's caption states the protocol it compares; the plots are also "
        "saved as PNG and SVG beside this page.</p>",
        f"<nav><ul>\n{nav}\n</ul></nav>", *sections, "</body>", "</html>", ""])
