"""``Run``: ranked documents per query, the output of a retriever and the input of metrics.

A run built from scores keeps trec_eval's order: score descending, ties broken by document id
descending. Every metric is computed on a run's order, so results agree with trec_eval even when
scores tie. Another system's file can instead keep the order its system gave, its rank column
(``ties="rank"``): fp16-rounded scores tie often, and trec_eval's order is then not that system's.
Retrievers cut their top k in the same order (``tie_ranks``, ``top_k``), so which of several tied
documents survive the depth cut is trec_eval's choice too, not the implementation's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from harness.errors import UnknownNameError
from harness.formats import trec

# How a run file's tied scores are ordered: by document id as trec_eval does, or by its rank column.
TIE_ORDERS = ("trec_eval", "rank")


def _trec_order(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    # Two stable sorts: by doc id descending, then by score descending.
    by_doc = sorted(scores.items(), key=lambda item: item[0], reverse=True)
    return sorted(by_doc, key=lambda item: item[1], reverse=True)


def tie_ranks(doc_ids: list[str]) -> np.ndarray:
    """Each document's place in trec_eval's tie order (document id descending, as ``_trec_order``
    compares ids): of two equal scores, the lower rank comes first."""
    order = sorted(range(len(doc_ids)), key=doc_ids.__getitem__, reverse=True)
    ranks = np.empty(len(doc_ids), dtype=np.int64)
    ranks[order] = np.arange(len(doc_ids), dtype=np.int64)
    return ranks


def top_k(scores: np.ndarray, k: int, ranks: np.ndarray) -> np.ndarray:
    """Positions of the ``k`` best of one query's ``scores`` (one per document), in trec_eval order:
    score descending, then ``ranks`` (``tie_ranks``) ascending. A group tied at the cut is cut by
    rank, so the set returned is the first k of the whole sorted ranking."""
    n = scores.shape[0]
    if k >= n:
        chosen = np.arange(n)
    elif k <= 0:
        return np.zeros(0, dtype=np.int64)
    else:
        kth = np.partition(scores, n - k)[n - k]  # the k-th largest score
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        tied = tied[np.argsort(ranks[tied], kind="stable")[:k - above.size]]
        chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((ranks[chosen], -scores[chosen]))]


class Run(Mapping[str, list[tuple[str, float]]]):
    def __init__(self, scores: Mapping[str, Mapping[str, float]], name: str = "run"):
        self.name = name
        self._rankings = {str(q): _trec_order({str(d): float(s) for d, s in docs.items()}) for q, docs in scores.items()}

    @classmethod
    def ranked(cls, rankings: Mapping[str, Iterable[tuple[str, float]]], name: str = "run") -> Run:
        """A run in the order given, not re-sorted."""
        run = cls.__new__(cls)
        run.name = name
        run._rankings = {str(q): [(str(d), float(s)) for d, s in r] for q, r in rankings.items()}
        return run

    def __getitem__(self, qid: str) -> list[tuple[str, float]]:
        return self._rankings[qid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rankings)

    def __len__(self) -> int:
        return len(self._rankings)

    def scores(self) -> dict[str, dict[str, float]]:
        return {q: dict(r) for q, r in self._rankings.items()}

    def truncated(self, k: int) -> Run:
        return Run.ranked({q: r[:k] for q, r in self._rankings.items()}, self.name)

    def without_self_matches(self) -> Run:
        """Drop a query's own id from its ranking (ArguAna, Quora: the query is in the corpus)."""
        return Run.ranked({q: [(d, s) for d, s in r if d != q] for q, r in self._rankings.items()}, self.name)

    def to_trec(self, path: str | Path) -> None:
        trec.write_run(path, self._rankings.items(), tag=self.name)

    @classmethod
    def from_trec(cls, path: str | Path, name: str | None = None, ties: str = "trec_eval") -> Run:
        """A TREC run file; ``ties="rank"`` orders it by its rank column, equal ranks in trec_eval's order."""
        name = name or Path(path).name.split(".")[0]
        if ties == "trec_eval":
            return cls(trec.read_run(path), name)
        if ties == "rank":
            entries = trec.read_ranked_run(path)
            rank = {q: {d: r for d, r, _ in e} for q, e in entries.items()}
            by_trec = cls({q: {d: s for d, _, s in e} for q, e in entries.items()}, name)
            return cls.ranked({q: sorted(r, key=lambda item: rank[q][item[0]]) for q, r in by_trec.items()}, name)
        raise UnknownNameError(f"Unknown tie order {ties!r}. Known tie orders: {', '.join(TIE_ORDERS)}.")
