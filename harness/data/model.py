"""The uniform dataset object every loader produces and every retriever consumes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.corpus import Corpus
from harness.formats import trec

__all__ = ["Corpus", "DataReport", "Dataset", "Qrels", "Queries"]


@dataclass(frozen=True)
class Queries:
    ids: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, ids: list[str]) -> Queries:
        index = {qid: i for i, qid in enumerate(self.ids)}
        return Queries(ids=list(ids), texts=[self.texts[index[q]] for q in ids])


class Qrels(Mapping[str, Mapping[str, int]]):
    """Graded relevance judgments: query id -> document id -> grade (0 = judged non-relevant)."""

    def __init__(self, judgments: Mapping[str, Mapping[str, int]]):
        self._q = {str(q): {str(d): int(g) for d, g in docs.items()} for q, docs in judgments.items()}

    def __getitem__(self, qid: str) -> Mapping[str, int]:
        return self._q[qid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._q)

    def __len__(self) -> int:
        return len(self._q)

    @property
    def n_judgments(self) -> int:
        return sum(len(d) for d in self._q.values())

    def grades(self) -> set[int]:
        return {g for d in self._q.values() for g in d.values()}

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {q: dict(d) for q, d in self._q.items()}

    @classmethod
    def from_trec(cls, path: str | Path) -> Qrels:
        return cls(trec.read_qrels(path))

    def to_trec(self, path: str | Path) -> None:
        Path(path).write_text("".join(trec.iter_qrels_lines(self._q)), encoding="utf-8")


@dataclass(frozen=True)
class DataReport:
    """What loading dropped, and what it kept though a check flagged it (empty documents,
    judgments naming documents absent from the corpus), by reason. It enters the protocol card:
    a dataset loaded with other drops is another protocol."""

    dropped: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())


@dataclass(frozen=True)
class Dataset:
    name: str
    language: str
    corpus: Corpus
    queries: Queries
    qrels: Qrels
    # Re-ranking datasets give each query its candidate documents, in the given order.
    candidates: dict[str, list[str]] | None = None
    report: DataReport = field(default_factory=DataReport)
    revision: dict = field(default_factory=dict)
