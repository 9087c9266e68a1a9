"""A table as Markdown, LaTeX (booktabs) or CSV text. The HTML page is ``report.html``."""

from __future__ import annotations

import csv
import io

from harness.report.marks import BETTER, WORSE
from harness.report.tables import AVG, MISMATCH_MARK, REPORTED_MARK, Table, fmt
from harness.report.tie_marks import TIE_MARK

DELTA = "Δ vs exact"  # the column of harness/report/vs_exact.py
DELTA_NOTE = ("Δ vs exact: an approximate index's main metric minus exact search's on the same queries, ×100, "
              "with the paired bootstrap's 95% interval (the mean over datasets where a row has several).")


def _styled(table: Table, row: str, column: str, bold, underline, escape=lambda s: s) -> str:
    text = escape(fmt(table.value(row, column)) + table.mark(row, column))
    rank = table.rank(row, column)
    return bold(text) if rank == 1 else underline(text) if rank == 2 else text


def to_markdown(table: Table) -> str:
    # <ins> is the underline that GitHub's Markdown keeps (it drops <u>).
    head = [_row_header(table), *table.columns, AVG, *([DELTA] if table.deltas else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in table.rows:
        cells = [row] + [_styled(table, row, c, lambda t: f"**{t}**", lambda t: f"<ins>{t}</ins>")
                         for c in [*table.columns, AVG]] + ([table.deltas.get(row, "")] if table.deltas else [])
        lines.append("| " + " | ".join(cells) + " |")
    return f"## {table.title}\n\n" + "\n".join(lines) + f"\n\n{caption(table)}\n"


def caption(table: Table) -> str:
    return " ".join([table.caption(), *([DELTA_NOTE] if table.deltas else []), *table.notes])


def _row_header(table: Table) -> str:
    return "Model" if table.kind == "languages" else "Retriever"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  MISMATCH_MARK: r"$^\dagger$", REPORTED_MARK: r"$^{r}$", TIE_MARK: r"$^\ddagger$", "×": r"$\times$", "≤": r"$\leq$",
                  BETTER: r"$^{\blacktriangle}$", WORSE: r"$^{\blacktriangledown}$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


# Wider tables are scaled to the text width, as papers do with BEIR's 18 columns.
_SCALE_ABOVE_COLUMNS = 8


def to_latex(tables: list[Table]) -> str:
    """A complete document (article + booktabs) that compiles as is; copy the table environments
    into a paper (they need booktabs, amssymb for the significance triangles, graphicx)."""
    body = []
    for table in tables:
        rows = []
        for row in table.rows:
            cells = [latex_escape(row)] + [
                _styled(table, row, c, lambda t: rf"\textbf{{{t}}}", lambda t: rf"\underline{{{t}}}", latex_escape)
                for c in [*table.columns, AVG]] + ([latex_escape(table.deltas.get(row, ""))] if table.deltas else [])
            rows.append(" & ".join(cells) + r" \\")
        header = " & ".join([_row_header(table), *(latex_escape(c) for c in table.columns), AVG,
                             *([r"$\Delta$ vs exact"] if table.deltas else [])]) + r" \\"
        tabular = [r"\begin{tabular}{l" + "r" * (len(table.columns) + 1 + bool(table.deltas)) + "}", r"\toprule", header, r"\midrule",
                   *rows, r"\bottomrule", r"\end{tabular}"]
        if len(table.columns) > _SCALE_ABOVE_COLUMNS:
            tabular = [r"\resizebox{\linewidth}{!}{%", *tabular, "}"]
        body.append("\n".join([
            r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(caption(table))}}}",
            *tabular, r"\end{table}",
        ]))
    return "\n".join([r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{amssymb}",
                      r"\usepackage{graphicx}", r"\begin{document}", "\n\n".join(body), r"\end{document}", ""])


def to_csv(table: Table) -> str:
    """Full-precision values (not x100), one row per retriever; marks are in significance.csv."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    delta = ["delta_vs_exact_x100"] if table.deltas else []
    writer.writerow(["suite" if table.kind != "languages" else "table", "retriever", *table.columns, "average", *delta])
    writer.writerow(["metric", "", *(table.column_metrics[c] for c in table.columns), ""])
    writer.writerow(["protocol_hash", "", *(table.column_protocols[c] for c in table.columns), ""])
    for row in table.rows:
        values = [table.value(row, c) for c in [*table.columns, AVG]]
        writer.writerow([table.title, row, *("" if v is None else f"{v:.6f}" for v in values),
                         *([table.deltas.get(row, "")] if table.deltas else [])])
    return out.getvalue()


def significance_csv(tables: list[Table]) -> str:
    """Long form: every tested cell with its raw and Holm-adjusted p-value and its mark."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["table", "retriever", "column", "baseline", "value", "baseline_value", "p", "p_holm", "mark"])
    for table in tables:
        sig = table.significance
        if sig is None:
            continue
        for (row, column), p in sig.p_raw.items():
            writer.writerow([table.title, row, column, sig.baseline, f"{table.value(row, column):.6f}",
                             f"{table.value(sig.baseline, column):.6f}", f"{p:.6g}",
                             f"{sig.p_adjusted[(row, column)]:.6g}", sig.marks.get((row, column), "")])
    return out.getvalue()
