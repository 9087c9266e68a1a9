"""Data checks applied to every dataset, whatever its source. Invalid rows either stop the
load with an error naming them, or are dropped or kept and counted in a ``DataReport`` (and so
in the protocol card): never dropped silently.

Judgments stay as the official files have them. One naming a document absent from the corpus (not
in the source, or dropped by a check here) is kept: trec_eval and BEIR's evaluation count it in
the ideal ranking, and dropping it would raise nDCG and recall above the published figures. Only
judgments of queries with no query text leave the qrels, since no run can hold those queries."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

from harness.data.corpus import Corpus, DocumentTable
from harness.data.model import DataReport, Qrels, Queries
from harness.data.sources import RawData
from harness.errors import DataError
from harness.formats.trec import MAX_GRADE
from harness.suite_schema import Checks, Policy

log = logging.getLogger(__name__)


class _Tally:
    def __init__(self, where: str):
        self.where = where
        self.dropped: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def handle(self, reason: str, ids: list[str], policy: Policy, what: str, fix: str) -> None:
        if not ids:
            return
        shown = ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        if policy is Policy.error:
            raise DataError(f"{self.where}: {len(ids)} {what}: {shown}. {fix}")
        (self.kept if policy is Policy.keep else self.dropped)[reason] += len(ids)
        self.examples[reason] = list(ids[:5])
        log.warning("%s: %s %d %s: %s", self.where, "kept" if policy is Policy.keep else "dropped", len(ids),
                    what, shown)

    def report(self) -> DataReport:
        return DataReport(dropped=dict(sorted(self.dropped.items())), kept=dict(sorted(self.kept.items())),
                          examples=self.examples)


def _duplicates(ids: list[str]) -> list[str]:
    return [i for i, n in Counter(ids).items() if n > 1]


def _empty_rows(table: DocumentTable, keep: np.ndarray) -> list[int]:
    """The kept rows whose title and text are both blank, read a batch at a time."""
    empty = []
    for first, values in table.read(0, len(table), ("title", "text")):
        for j, (title, text) in enumerate(zip(values["title"], values["text"])):
            if keep[first + j] and not (title or "").strip() and not (text or "").strip():
                empty.append(first + j)
    return empty


def check(raw: RawData, policy: Checks, where: str) -> tuple[Corpus, Queries, Qrels, DataReport]:
    tally = _Tally(where)
    fix_policy = "Set `checks.{}: {}` in the suite to {} and count them instead."

    table = raw.documents if isinstance(raw.documents, DocumentTable) else DocumentTable.of(raw.documents)
    ids = table.ids()
    keep = np.ones(len(ids), dtype=bool)
    dup = _duplicates(ids)
    tally.handle("duplicate_document_ids", dup, policy.duplicate_ids, "duplicate document ids",
                 fix_policy.format("duplicate_ids", "drop", "drop") + " The first occurrence is kept.")
    if dup:
        seen: set[str] = set()
        keep[[i for i, d in enumerate(ids) if d in seen or seen.add(d)]] = False
    empty_rows = _empty_rows(table, keep)
    empty = [ids[i] for i in empty_rows]
    tally.handle("empty_documents", empty, policy.empty_documents, "documents with empty title and text",
                 fix_policy.format("empty_documents", "keep", "search them as empty texts, as BEIR does,"))
    if empty and policy.empty_documents is Policy.drop:
        keep[empty_rows] = False
    corpus = Corpus(table, None if keep.all() else np.flatnonzero(keep))

    queries = raw.queries
    dup = _duplicates([q[0] for q in queries])
    tally.handle("duplicate_query_ids", dup, policy.duplicate_ids, "duplicate query ids",
                 fix_policy.format("duplicate_ids", "drop", "drop") + " The first occurrence is kept.")
    if dup:
        seen = set()
        queries = [q for q in queries if not (q[0] in seen or seen.add(q[0]))]
    empty = [q[0] for q in queries if not q[1].strip()]
    tally.handle("empty_queries", empty, policy.empty_queries, "empty queries",
                 fix_policy.format("empty_queries", "drop", "drop"))
    if empty:
        gone = set(empty)
        queries = [q for q in queries if q[0] not in gone]

    doc_ids = set(corpus.ids)
    query_ids = {q[0] for q in queries}
    judgments = raw.judgments
    absent = [f"{j[0]}/{j[1]}" for j in judgments if j[0] in query_ids and j[1] not in doc_ids]
    tally.handle("judgments_absent_document", absent, policy.unknown_judgments,
                 "judgments (query/document) naming documents not in the corpus (absent from the source or "
                 "dropped by the checks)", fix_policy.format("unknown_judgments", "keep", "keep them in the qrels"))
    # No run can hold a query without text, so its judgments cannot be evaluated whatever the
    # policy (trec_eval evaluates the run's queries): they are left out, and counted.
    unknown_q = sorted({j[0] for j in judgments if j[0] not in query_ids})
    tally.handle("judgments_unknown_query", unknown_q,
                 Policy.error if policy.unknown_judgments is Policy.error else Policy.drop,
                 "judged query ids with no query text",
                 fix_policy.format("unknown_judgments", "keep", "leave their judgments out (no run holds them)"))
    qrels = _judgments(judgments, query_ids, where)

    # Queries nobody judged cannot be scored; search only the judged ones, and say so.
    unjudged = [q[0] for q in queries if q[0] not in qrels]
    if unjudged:
        tally.dropped["queries_without_judgments"] += len(unjudged)
        log.info("%s: %d queries have no judgments and are not evaluated", where, len(unjudged))
        queries = [q for q in queries if q[0] in qrels]

    return corpus, Queries(ids=[q[0] for q in queries], texts=[q[1] for q in queries]), Qrels(qrels), tally.report()


def _judgments(judgments, query_ids: set[str], where: str) -> dict[str, dict[str, int]]:
    """Query -> document -> grade. Grades are whole numbers from 0 to MAX_GRADE, as in a qrels file
    (trec.read_qrels); a (query, document) judged twice with different grades is an error (which
    one the official scores used cannot be told), an identical repeat counts once."""
    qrels: dict[str, dict[str, int]] = {}
    for qid, did, value in judgments:
        grade = _whole(value)
        if grade is None or not 0 <= grade <= MAX_GRADE:
            raise DataError(f"{where}: query {qid!r}, document {did!r} has the relevance {value!r}; grades are "
                            f"whole numbers from 0 (judged non-relevant) to {MAX_GRADE}. The source's judgments "
                            "are not the official ones, or the suite reads the wrong file.")
        known = qrels.setdefault(qid, {}) if qid in query_ids else {}
        if did in known and known[did] != grade:
            raise DataError(f"{where}: query {qid!r}, document {did!r} is judged both {known[did]} and {grade}. "
                            "The judgments contradict each other; fix the source's qrels (keep one line).")
        if qid in query_ids:
            known[did] = grade
    return qrels


def _whole(value) -> int | None:
    """``value`` as an int when it is a whole number (1, 1.0, numpy's ints), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and not isinstance(value, bool) else None
