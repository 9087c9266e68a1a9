"""BM25 on bm25s, with PyStemmer stemming.

The defaults reproduce Pyserini's BEIR "flat" baseline: Lucene's BM25 (k1=0.9, b=0.4), lower-case,
Lucene's 33 English stop words, Porter stemmer, and single-character tokens kept as Lucene's
StandardTokenizer keeps them (bm25s's own default pattern drops them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.retrievers.base import Retriever
from harness.runs import Run

LUCENE_TOKEN_PATTERN = r"(?u)\b\w+\b"


class BM25Retriever(Retriever):
    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        stemmer: str | None = "porter",
        stopwords: str | list[str] | None = "en",
        token_pattern: str = LUCENE_TOKEN_PATTERN,
        lowercase: bool = True,
    ):
        import Stemmer

        self.k1, self.b, self.method = float(k1), float(b), method
        self.stemmer_name, self.stopwords = stemmer, stopwords
        self.token_pattern, self.lowercase = token_pattern, lowercase
        self._stemmer = Stemmer.Stemmer(stemmer) if stemmer else None
        self._model = None
        self._doc_ids: list[str] = []

    def settings(self) -> dict[str, Any]:
        return {
            "bm25": {"method": self.method, "k1": self.k1, "b": self.b},
            "tokenizer": {
                "kind": "regex",
                "pattern": self.token_pattern,
                "lowercase": self.lowercase,
                "stopwords": self.stopwords,
                "stemmer": f"pystemmer:{self.stemmer_name}" if self.stemmer_name else None,
            },
            "max_length": "not applied: BM25 indexes whole texts",
        }

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(
            texts, lower=self.lowercase, stopwords=self.stopwords, stemmer=self._stemmer,
            token_pattern=self.token_pattern, return_ids=False, show_progress=False,
        )

    def index(self, ids: list[str], texts: list[str]) -> None:
        import bm25s

        self._doc_ids = list(ids)
        self._model = bm25s.BM25(method=self.method, k1=self.k1, b=self.b)
        self._model.index(self.tokenize(texts), show_progress=False)

    def _scores(self, tokens: list[str]) -> np.ndarray:
        if not tokens:
            return np.zeros(len(self._doc_ids), dtype=np.float32)
        return self._model.get_scores(tokens)

    def search(self, ids: list[str], texts: list[str], k: int) -> Run:
        k = min(k, len(self._doc_ids))
        out: dict[str, dict[str, float]] = {}
        for qid, tokens in zip(ids, self.tokenize(texts)):
            scores = self._scores(tokens)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            # Documents sharing no term with the query score 0 and are not retrieved.
            out[qid] = {self._doc_ids[i]: float(scores[i]) for i in top if scores[i] > 0}
        return Run(out, name="bm25")

    def rerank(self, ids, texts, candidates) -> Run:
        position = {d: i for i, d in enumerate(self._doc_ids)}
        out = {}
        for qid, tokens in zip(ids, self.tokenize(texts)):
            scores = self._scores(tokens)
            out[qid] = {d: float(scores[position[d]]) for d in candidates.get(qid, []) if d in position}
        return Run(out, name="bm25")
