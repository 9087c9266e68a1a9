"""Paper-style tables from result records: retrievers as rows, datasets (or languages) as columns.

A dataset column holds results of one protocol (``protocol_hash``). Results of several protocols
in one column are refused unless forced, and then the ones off the column's main protocol are
marked. Datasets that share a ``group`` in their protocol card (CQADupStack's twelve forums)
collapse into one column of the suite table, the mean of the members, so that the group counts
once in the suite average; each group also gets a table of its own members.

Every cell remembers which results it averages, and with which weights (``Part``), so that the
significance step can pair a row's per-query scores with the baseline's on the same queries.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ProtocolMismatchError
from harness.hashing import sha256
from harness.protocol import MISMATCH_MARK, ProtocolCard
from harness.report.protocol_summary import protocol_summary
from harness.report.tie_marks import NOTE as TIE_NOTE
from harness.report.tie_marks import tie_marks
from harness.results import REPORTED, ResultRecord

AVG = "Avg"  # the average column's key in cells, parts and significance marks
REPORTED_MARK = "ʳ"  # a reference row (`harness import-mteb`): numbers as reported, under MTEB's protocol

Cell = tuple[str, str]  # (row, column)


@dataclass(frozen=True)
class Part:
    """One result's share of a cell: the cell's value is the weighted sum of its parts' scores."""

    key: str  # the result's id, "suite/dataset/record key": finds its per-query scores
    dataset: str  # "suite/dataset": pairs a row's part with the baseline's part on the same queries
    metric: str
    weight: float


@dataclass
class Significance:
    """Marks of a table's cells against its baseline row, and what they mean (for the caption)."""

    baseline: str
    marks: dict[Cell, str]
    p_raw: dict[Cell, float]
    p_adjusted: dict[Cell, float]
    note: str


@dataclass
class Table:
    suite: str
    metric: str | None  # None: each dataset's main metric
    columns: list[str]
    column_metrics: dict[str, str]
    column_protocols: dict[str, str]
    rows: list[str]
    cells: dict[Cell, float] = field(default_factory=dict)
    marks: dict[Cell, str] = field(default_factory=dict)  # protocol mismatches (forced)
    parts: dict[Cell, list[Part]] = field(default_factory=dict)
    title: str = ""
    kind: str = "suite"  # suite | group | languages
    # (label, protocol card) of every dataset the table covers: the caption states their protocol.
    cards: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    column_languages: dict[str, str | None] = field(default_factory=dict)
    column_notes: dict[str, str] = field(default_factory=dict)  # e.g. what a group column averages
    outside_average: set[str] = field(default_factory=set)  # columns shown but not averaged (MS MARCO)
    significance: Significance | None = None
    # (pessimistic, optimistic) of a dataset column's metric over tie orders, where the record has it.
    tie_bounds: dict[Cell, tuple[float, float]] = field(default_factory=dict)
    deltas: dict[str, str] = field(default_factory=dict)  # row -> "Δ vs exact" text (report/vs_exact.py)
    notes: list[str] = field(default_factory=list)  # sentences after the caption (report/vs_fp32.py)

    def __post_init__(self):
        self.title = self.title or self.suite

    # values -------------------------------------------------------------------------------------
    @property
    def averaged_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.outside_average]

    def average(self, row: str) -> float | None:
        values = [self.cells.get((row, c)) for c in self.averaged_columns]
        if not values or any(v is None for v in values):
            return None
        return sum(values) / len(values)

    def value(self, row: str, column: str) -> float | None:
        return self.average(row) if column == AVG else self.cells.get((row, column))

    def cell_parts(self, row: str, column: str) -> list[Part] | None:
        """The results behind a cell; for the average, every column's parts scaled by 1/columns."""
        if column != AVG:
            return self.parts.get((row, column))
        if self.average(row) is None:
            return None
        columns = self.averaged_columns
        return [Part(p.key, p.dataset, p.metric, p.weight / len(columns)) for c in columns for p in self.parts[(row, c)]]

    def best(self, column: str) -> float | None:
        values = [v for v in (self.value(r, column) for r in self.rows) if v is not None]
        return max(values) if values else None

    def best_average(self) -> float | None:
        return self.best(AVG)

    def rank(self, row: str, column: str) -> int | None:
        """1 for the best printed value of the column, 2 for the second best; ties share a rank.
        Ranks are taken at the printed precision, so equal-looking numbers look equally good."""
        value = self.value(row, column)
        if value is None:
            return None
        printed = sorted({fmt(v) for v in (self.value(r, column) for r in self.rows) if v is not None},
                         key=float, reverse=True)
        position = printed.index(fmt(value)) + 1
        return position if position <= 2 else None

    def mark(self, row: str, column: str) -> str:
        """The marks printed after a value: protocol mismatch, then significance."""
        sig = self.significance.marks.get((row, column), "") if self.significance else ""
        return self.marks.get((row, column), "") + self.tie_marks.get((row, column), "") + sig

    @property
    def tie_marks(self) -> dict[Cell, str]:
        return tie_marks(self.rows, self.columns, self.value, self.tie_bounds)

    # caption ------------------------------------------------------------------------------------
    def caption(self) -> str:
        metrics = set(self.column_metrics.values())
        what = metrics.pop() if len(metrics) == 1 else "each dataset's main metric"
        if self.kind == "languages":
            head = (f"Languages across suites {', '.join(sorted({c.split('/')[0] for c, _ in self.cards}))}: "
                    f"{what} ×100; a language's cell is the mean over its datasets "
                    f"({'; '.join(f'{c}: {self.column_notes[c]}' for c in self.columns)})")
        elif self.kind == "group":
            head = f"Suite {self.suite}, group {self.title.split(' / ')[-1]}: {what} ×100"
        else:
            head = f"Suite {self.suite}: {what} ×100"
        text = (f"{head} ({protocol_summary(self.cards)}). Best per column in bold, second underlined; "
                f"{AVG} is the mean over the columns (blank when a row lacks one)")
        if self.outside_average:
            text += f" except {', '.join(sorted(self.outside_average))}, reported but outside the average"
        if self.kind == "suite" and self.column_notes:
            groups = "; ".join(f"{c}: {self.column_notes[c]}" for c in self.columns if c in self.column_notes)
            text += f"; a group counts once, as the mean of its members ({groups})"
        text += "."
        if self.kind != "languages":
            text += " Protocol hashes: " + ", ".join(f"{c} {self.column_protocols[c][:8]}" for c in self.columns) + "."
        if MISMATCH_MARK in self.marks.values():
            text += f" {MISMATCH_MARK} measured under another protocol than the column's (forced)."
        if REPORTED_MARK in self.marks.values():
            text += (f" {REPORTED_MARK} reported in MTEB's result files, under MTEB's loading of the data; no "
                     "per-query scores, so never tested for significance.")
        if self.tie_marks:
            text += " " + TIE_NOTE
        if self.significance:
            text += " " + self.significance.note
        return text


def natural_key(text: str) -> list:
    """Sort key that puts ``m@dim=64`` before ``m@dim=128``: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def result_id(record: ResultRecord) -> str:
    """Record keys omit the suite and dataset labels (same data, same key), so a result's id adds them."""
    return f"{record.suite}/{record.dataset}/{record.key}"


def fmt(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def row_labels(records: list[ResultRecord]) -> dict[str, str]:
    """Row label per record key: the retriever's name, plus a configuration hash where two
    configurations share a name."""
    config = {r.key: sha256({"class": r.retriever.get("class"), "params": r.retriever.get("params")})[:6]
              for r in records}
    configs = defaultdict(set)
    for r in records:
        configs[r.label].add(config[r.key])
    return {r.key: r.label if len(configs[r.label]) == 1 else f"{r.label} [{config[r.key]}]" for r in records}


@dataclass
class _DatasetColumn:
    """One dataset of a suite, checked: its metric, main protocol and the rows' values."""

    name: str
    metric: str
    protocol: str
    card: dict[str, Any]
    values: dict[str, float]
    keys: dict[str, str]
    marks: dict[str, str]
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # row -> tie bounds

    @property
    def group(self) -> str | None:
        return self.card.get("group")

    @property
    def language(self) -> str | None:
        return self.card.get("language")


def _dataset_column(suite: str, dataset: str, recs: list[ResultRecord], labels: dict[str, str],
                    metric: str | None, force: bool) -> _DatasetColumn:
    own = [r for r in recs if r.origin != REPORTED] or recs  # reference rows stand beside, marked
    hashes = Counter(r.protocol_hash for r in own)
    main_hash = hashes.most_common(1)[0][0]
    if len(hashes) > 1 and not force:
        raise _mismatch(suite, dataset, own)
    main = next(r for r in own if r.protocol_hash == main_hash)
    column = _DatasetColumn(dataset, metric or main.main_metric, main_hash, main.protocol, {}, {}, {})
    seen: dict[str, ResultRecord] = {}  # row -> the result already in it
    for r in recs:
        if column.metric not in r.metrics:
            raise ProtocolMismatchError(
                f"Result {r.label} on {suite}/{dataset} has no metric {column.metric!r}; it has "
                f"{', '.join(r.metrics)}. Choose one of those with --metric.")
        row = labels[r.key]
        if row in column.values:
            first = seen[row]
            how = (f"under protocols {first.protocol_hash[:8]} and {r.protocol_hash[:8]}"
                   if first.protocol_hash != r.protocol_hash else "one system and protocol, stored twice")
            raise ProtocolMismatchError(
                f"Two results for row {row} on {suite}/{dataset}: {first.label} and {r.label} ({how}). "
                "Remove one of the result folders.")
        seen[row] = r
        column.values[row] = r.metrics[column.metric]
        column.keys[row] = result_id(r)
        if r.ties and r.ties.get("metric") == column.metric:
            column.bounds[row] = (r.ties["pessimistic"], r.ties["optimistic"])
        if r.origin == REPORTED and main.origin != REPORTED:
            column.marks[row] = REPORTED_MARK
        elif r.protocol_hash != main_hash:
            column.marks[row] = MISMATCH_MARK
    return column


def _fill(table: Table, name: str, members: list[_DatasetColumn], suite: str) -> None:
    """Column ``name`` of ``table`` as the mean of ``members`` (one member: the dataset itself);
    a row gets a value only when it has every member."""
    for row in table.rows:
        if not all(row in m.values for m in members):
            continue
        table.cells[(row, name)] = sum(m.values[row] for m in members) / len(members)
        table.parts[(row, name)] = [Part(m.keys[row], f"{suite}/{m.name}", m.metric, 1 / len(members))
                                    for m in members]
        if any(row in m.marks for m in members):
            table.marks[(row, name)] = next(m.marks[row] for m in members if row in m.marks)
        if len(members) == 1 and row in members[0].bounds:
            table.tie_bounds[(row, name)] = members[0].bounds[row]


def _table(suite: str, metric: str | None, title: str, kind: str, rows: list[str],
           columns: dict[str, list[_DatasetColumn]]) -> Table:
    """A table whose columns are each the mean of some dataset columns."""
    names = sorted(columns)
    table = Table(suite, metric, names, {}, {}, rows, title=title, kind=kind)
    for name in names:
        members = columns[name]
        table.column_metrics[name] = "/".join(sorted({m.metric for m in members}))
        table.column_protocols[name] = (members[0].protocol if len(members) == 1
                                        else sha256(sorted(m.protocol for m in members)))
        languages = {m.language for m in members}
        table.column_languages[name] = languages.pop() if len(languages) == 1 else None
        if len(members) > 1:
            table.column_notes[name] = f"mean of {len(members)} datasets"
        if kind == "suite" and not any(m.card.get("in_average", True) for m in members):
            table.outside_average.add(name)
        table.cards += [(f"{suite}/{m.name}" if kind == "languages" else m.name, m.card) for m in members]
        _fill(table, name, members, suite)
    table.cards.sort(key=lambda item: item[0])
    return table


def _suite_columns(records: list[ResultRecord], metric: str | None, force: bool):
    by_suite: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_suite[r.suite].append(r)
    for suite, recs in sorted(by_suite.items()):
        labels = row_labels(recs)
        by_dataset: dict[str, list[ResultRecord]] = defaultdict(list)
        for r in recs:
            by_dataset[r.dataset].append(r)
        columns = [_dataset_column(suite, d, rs, labels, metric, force) for d, rs in sorted(by_dataset.items())]
        yield suite, sorted(set(labels.values()), key=natural_key), columns


def build_tables(records: list[ResultRecord], metric: str | None = None, force: bool = False,
                 languages: bool = True) -> list[Table]:
    """One table per suite (groups as one column each), one per group, and (``languages``) the
    cross-suite language matrix when some suite is multilingual or not English."""
    tables, suite_tables = [], []
    for suite, rows, columns in _suite_columns(records, metric, force):
        grouped: dict[str, list[_DatasetColumn]] = defaultdict(list)
        for c in columns:
            grouped[c.group or c.name].append(c)
        clash = {c.group for c in columns if c.group} & {c.name for c in columns if not c.group}
        if clash:
            raise ProtocolMismatchError(
                f"Suite {suite}: group name {sorted(clash)[0]!r} is also a dataset's name; rename the group.")
        table = _table(suite, metric, suite, "suite", rows, grouped)
        tables.append(table)
        suite_tables.append((table, grouped))
        for group in sorted(g for g in grouped if len(grouped[g]) > 1 or grouped[g][0].group):
            members = {m.name: [m] for m in grouped[group]}
            tables.append(_table(suite, metric, f"{suite} / {group}", "group", rows, members))
    if languages:
        matrix = _language_matrix(suite_tables, metric)
        if matrix is not None:
            tables.append(matrix)
    return tables


def _language_matrix(suite_tables, metric: str | None) -> Table | None:
    """One row per model, one column per language over the suites that are multilingual or not
    English (MIRACL, MLDR, JQaRA; not BEIR): a cell is the mean over that language's columns of
    those suites (a group counting once), blank when the row lacks one."""
    units: dict[str, list[tuple[str, str, list[_DatasetColumn]]]] = defaultdict(list)
    for table, grouped in suite_tables:
        languages = set(table.column_languages.values())
        if len(languages) < 2 and languages <= {"en"}:
            continue
        for name, language in table.column_languages.items():
            if language is not None:
                units[language].append((table.suite, name, grouped[name]))
    if not units:
        return None
    rows = sorted({row for table, _ in suite_tables for row in table.rows
                   if any(s == table.suite for us in units.values() for s, _, _ in us)}, key=natural_key)
    matrix = Table("languages", metric, sorted(units), {}, {}, rows, title="Languages", kind="languages")
    for language, members in sorted(units.items()):
        matrix.column_metrics[language] = "/".join(sorted({m.metric for _, _, ms in members for m in ms}))
        matrix.column_protocols[language] = sha256(sorted(m.protocol for _, _, ms in members for m in ms))
        matrix.column_languages[language] = language
        matrix.column_notes[language] = ", ".join(f"{s}/{n}" for s, n, _ in members)
        matrix.cards += [(f"{s}/{m.name}", m.card) for s, _, ms in members for m in ms]
        for row in rows:
            if not all(row in m.values for _, _, ms in members for m in ms):
                continue
            parts, value, marked = [], 0.0, ""
            for suite, _, ms in members:
                for m in ms:  # a group's members share its unit's weight
                    w = 1 / (len(members) * len(ms))
                    value += w * m.values[row]
                    parts.append(Part(m.keys[row], f"{suite}/{m.name}", m.metric, w))
                    marked = marked or m.marks.get(row, "")
            matrix.cells[(row, language)] = value
            matrix.parts[(row, language)] = parts
            if marked:
                matrix.marks[(row, language)] = marked
    matrix.cards.sort(key=lambda item: item[0])
    return matrix


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
