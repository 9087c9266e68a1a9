"""Report tables from stored results: retrievers as rows, datasets as columns, one table per suite.

A column holds results of one protocol (``protocol_hash``). Results of several protocols in one
column are refused unless forced, and then the ones off the column's main protocol are marked.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, ProtocolMismatchError
from harness.protocol import ProtocolCard, sha256
from harness.results import ResultRecord, ResultStore

FORMATS = {"markdown": "md", "latex": "tex", "csv": "csv"}
MISMATCH_MARK = "†"


@dataclass
class Table:
    suite: str
    metric: str | None  # None: each dataset's main metric
    columns: list[str]
    column_metrics: dict[str, str]
    column_protocols: dict[str, str]
    rows: list[str]
    cells: dict[tuple[str, str], float] = field(default_factory=dict)
    marks: dict[tuple[str, str], str] = field(default_factory=dict)

    def average(self, row: str) -> float | None:
        values = [self.cells.get((row, c)) for c in self.columns]
        return None if any(v is None for v in values) else sum(values) / len(values)

    def best(self, column: str) -> float | None:
        values = [self.cells[(r, column)] for r in self.rows if (r, column) in self.cells]
        return max(values) if values else None

    def best_average(self) -> float | None:
        values = [a for a in (self.average(r) for r in self.rows) if a is not None]
        return max(values) if values else None

    def caption(self) -> str:
        metrics = set(self.column_metrics.values())
        what = metrics.pop() if len(metrics) == 1 else "each dataset's main metric"
        protocols = ", ".join(f"{c} {self.column_protocols[c][:8]}" for c in self.columns)
        text = (f"Suite {self.suite}: {what} ×100; best per column in bold; Avg is the mean over the "
                f"datasets (blank when a row lacks one). Protocol hashes: {protocols}.")
        if self.marks:
            text += f" {MISMATCH_MARK} measured under another protocol than the column's (forced)."
        return text


def _row_labels(records: list[ResultRecord]) -> dict[str, str]:
    """Row label per record key: the retriever's name, plus a configuration hash where two
    configurations share a name."""
    config = {r.key: sha256({"class": r.retriever.get("class"), "params": r.retriever.get("params")})[:6]
              for r in records}
    configs = defaultdict(set)
    for r in records:
        configs[r.label].add(config[r.key])
    return {r.key: r.label if len(configs[r.label]) == 1 else f"{r.label} [{config[r.key]}]" for r in records}


def build_tables(records: list[ResultRecord], metric: str | None = None, force: bool = False) -> list[Table]:
    by_suite: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_suite[r.suite].append(r)
    tables = []
    for suite, recs in sorted(by_suite.items()):
        labels = _row_labels(recs)
        columns = sorted({r.dataset for r in recs})
        col_metric, col_protocol = {}, {}
        table = Table(suite, metric, columns, col_metric, col_protocol, rows=sorted(set(labels.values())))
        for column in columns:
            in_col = [r for r in recs if r.dataset == column]
            hashes = Counter(r.protocol_hash for r in in_col)
            main_hash = hashes.most_common(1)[0][0]
            if len(hashes) > 1 and not force:
                raise _mismatch(suite, column, in_col)
            col_protocol[column] = main_hash
            col_metric[column] = metric or in_col[0].main_metric
            for r in in_col:
                if col_metric[column] not in r.metrics:
                    raise ProtocolMismatchError(
                        f"Result {r.label} on {suite}/{column} has no metric {col_metric[column]!r}; it has "
                        f"{', '.join(r.metrics)}. Choose one of those with --metric.")
                cell = (labels[r.key], column)
                if cell in table.cells:
                    raise ProtocolMismatchError(
                        f"Two results for {cell[0]} on {suite}/{column} (under protocols "
                        f"{r.protocol_hash[:8]} and another). Remove one of the result folders.")
                table.cells[cell] = r.metrics[col_metric[column]]
                if r.protocol_hash != main_hash:
                    table.marks[cell] = MISMATCH_MARK
        tables.append(table)
    return tables


def _mismatch(suite: str, dataset: str, records: list[ResultRecord]) -> ProtocolMismatchError:
    groups = defaultdict(list)
    for r in records:
        groups[r.protocol_hash].append(r)
    first, second = [g[0] for g in list(groups.values())[:2]]
    fields = ProtocolCard.model_validate(first.protocol).differences(ProtocolCard.model_validate(second.protocol))
    described = "; ".join(f"{h[:8]}: {', '.join(sorted(r.label for r in g))}" for h, g in groups.items())
    return ProtocolMismatchError(
        f"Results for {suite}/{dataset} were measured under {len(groups)} different protocols ({described}), "
        f"differing in: {', '.join(fields)}. Their scores are not comparable. Re-run them under one protocol, "
        f"or pass --force to tabulate them anyway, marked {MISMATCH_MARK}."
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def _is_best(value: float | None, best: float | None) -> bool:
    # Compare at the printed precision, so equal-looking numbers are all bold.
    return value is not None and best is not None and _fmt(value) == _fmt(best)


def to_markdown(table: Table) -> str:
    head = ["Retriever", *table.columns, "Avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in table.rows:
        cells = [row]
        for c in table.columns:
            v = table.cells.get((row, c))
            text = _fmt(v) + table.marks.get((row, c), "")
            cells.append(f"**{text}**" if _is_best(v, table.best(c)) else text)
        avg = table.average(row)
        cells.append(f"**{_fmt(avg)}**" if _is_best(avg, table.best_average()) else _fmt(avg))
        lines.append("| " + " | ".join(cells) + " |")
    return f"## {table.suite}\n\n" + "\n".join(lines) + f"\n\n{table.caption()}\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  MISMATCH_MARK: r"$^\dagger$", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(tables: list[Table]) -> str:
    """A complete document (article + booktabs) that compiles as is; copy the table environments
    into a paper."""
    body = []
    for table in tables:
        rows = []
        for row in table.rows:
            cells = [latex_escape(row)]
            for c in table.columns:
                v = table.cells.get((row, c))
                text = latex_escape(_fmt(v) + table.marks.get((row, c), ""))
                cells.append(rf"\textbf{{{text}}}" if _is_best(v, table.best(c)) else text)
            avg = table.average(row)
            cells.append(rf"\textbf{{{_fmt(avg)}}}" if _is_best(avg, table.best_average()) else _fmt(avg))
            rows.append(" & ".join(cells) + r" \\")
        header = " & ".join(["Retriever", *(latex_escape(c) for c in table.columns), "Avg"]) + r" \\"
        body.append("\n".join([
            r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(table.caption())}}}",
            r"\begin{tabular}{l" + "r" * (len(table.columns) + 1) + "}", r"\toprule", header, r"\midrule",
            *rows, r"\bottomrule", r"\end{tabular}", r"\end{table}",
        ]))
    return "\n".join([r"\documentclass{article}", r"\usepackage{booktabs}", r"\begin{document}",
                      "\n\n".join(body), r"\end{document}", ""])


def to_csv(table: Table) -> str:
    """Full-precision values (not x100), one row per retriever."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["suite", "retriever", *table.columns, "average"])
    writer.writerow(["metric", "", *(table.column_metrics[c] for c in table.columns), ""])
    writer.writerow(["protocol_hash", "", *(table.column_protocols[c] for c in table.columns), ""])
    for row in table.rows:
        values = [table.cells.get((row, c)) for c in table.columns]
        avg = table.average(row)
        writer.writerow([table.suite, row, *("" if v is None else f"{v:.6f}" for v in values),
                         "" if avg is None else f"{avg:.6f}"])
    return out.getvalue()


def write_reports(results: str | Path, out: str | Path, formats: list[str], metric: str | None = None,
                  force: bool = False) -> list[Path]:
    records = [r for _, r in ResultStore(results).records()]
    if not records:
        raise HarnessError(f"No results under {results}: run `harness run` first, or point to the results folder.")
    tables = build_tables(records, metric=metric, force=force)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "results" if metric is None else f"results-{metric.replace('@', '_at_')}"
    written = []
    for fmt in formats:
        if fmt == "markdown":
            text = "\n".join(to_markdown(t) for t in tables)
        elif fmt == "latex":
            text = to_latex(tables)
        else:
            text = "\n".join(to_csv(t) for t in tables)
        path = out / f"{stem}.{FORMATS[fmt]}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
