"""Data checks applied to every dataset, whatever its source. Invalid rows either stop the
load with an error naming them, or are dropped and counted in a ``DataReport`` (and so in
the protocol card): never dropped silently."""

from __future__ import annotations

import logging
from collections import Counter

from harness.data.model import Corpus, DataReport, Qrels, Queries
from harness.data.sources import RawData
from harness.errors import DataError
from harness.suite import Checks, Policy

log = logging.getLogger(__name__)


class _Tally:
    def __init__(self, where: str):
        self.where = where
        self.dropped: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def handle(self, reason: str, ids: list[str], policy: Policy, what: str, fix: str) -> None:
        if not ids:
            return
        shown = ", ".join(repr(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        if policy is Policy.error:
            raise DataError(f"{self.where}: {len(ids)} {what}: {shown}. {fix}")
        self.dropped[reason] += len(ids)
        self.examples[reason] = list(ids[:5])
        log.warning("%s: dropped %d %s: %s", self.where, len(ids), what, shown)

    def report(self) -> DataReport:
        return DataReport(dropped=dict(sorted(self.dropped.items())), examples=self.examples)


def _duplicates(ids: list[str]) -> list[str]:
    return [i for i, n in Counter(ids).items() if n > 1]


def check(raw: RawData, policy: Checks, where: str) -> tuple[Corpus, Queries, Qrels, DataReport]:
    tally = _Tally(where)
    fix_policy = "Set `checks.{}: drop` in the suite to drop and count them instead."

    docs = raw.documents
    dup = _duplicates([d[0] for d in docs])
    tally.handle("duplicate_document_ids", dup, policy.duplicate_ids, "duplicate document ids",
                 fix_policy.format("duplicate_ids") + " The first occurrence is kept.")
    if dup:
        seen: set[str] = set()
        docs = [d for d in docs if not (d[0] in seen or seen.add(d[0]))]
    empty = [d[0] for d in docs if not d[1].strip() and not d[2].strip()]
    tally.handle("empty_documents", empty, policy.empty_documents, "documents with empty title and text",
                 fix_policy.format("empty_documents"))
    if empty:
        gone = set(empty)
        docs = [d for d in docs if d[0] not in gone]

    queries = raw.queries
    dup = _duplicates([q[0] for q in queries])
    tally.handle("duplicate_query_ids", dup, policy.duplicate_ids, "duplicate query ids",
                 fix_policy.format("duplicate_ids") + " The first occurrence is kept.")
    if dup:
        seen = set()
        queries = [q for q in queries if not (q[0] in seen or seen.add(q[0]))]
    empty = [q[0] for q in queries if not q[1].strip()]
    tally.handle("empty_queries", empty, policy.empty_queries, "empty queries", fix_policy.format("empty_queries"))
    if empty:
        gone = set(empty)
        queries = [q for q in queries if q[0] not in gone]

    doc_ids = {d[0] for d in docs}
    query_ids = {q[0] for q in queries}
    judgments = raw.judgments
    unknown_q = sorted({j[0] for j in judgments if j[0] not in query_ids})
    tally.handle("judgments_unknown_query", [f"{q}" for q in unknown_q], policy.unknown_judgments,
                 "judged query ids with no query text", fix_policy.format("unknown_judgments"))
    unknown_d = [f"{j[0]}/{j[1]}" for j in judgments if j[0] in query_ids and j[1] not in doc_ids]
    tally.handle("judgments_unknown_document", unknown_d, policy.unknown_judgments,
                 "judgments (query/document) naming documents not in the corpus", fix_policy.format("unknown_judgments"))
    qrels: dict[str, dict[str, int]] = {}
    for qid, did, grade in judgments:
        if qid in query_ids and did in doc_ids:
            qrels.setdefault(qid, {})[did] = grade

    # Queries nobody judged cannot be scored; search only the judged ones, and say so.
    unjudged = [q[0] for q in queries if q[0] not in qrels]
    if unjudged:
        tally.dropped["queries_without_judgments"] += len(unjudged)
        log.info("%s: %d queries have no judgments and are not evaluated", where, len(unjudged))
        queries = [q for q in queries if q[0] in qrels]

    corpus = Corpus(ids=[d[0] for d in docs], titles=[d[1] for d in docs], texts=[d[2] for d in docs])
    return corpus, Queries(ids=[q[0] for q in queries], texts=[q[1] for q in queries]), Qrels(qrels), tally.report()
