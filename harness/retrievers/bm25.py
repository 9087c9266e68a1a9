"""BM25 on bm25s, with a language-aware analyser (harness.text).

The analyser follows the dataset's language (``language: auto``, the default; the pipeline passes
the suite's ``language`` through ``set_language``) or the one named in the params. For English
the defaults reproduce Pyserini's BEIR "flat" baseline: Lucene's BM25 (k1=0.9, b=0.4), lower-case,
Lucene's 33 English stop words, Porter stemmer, and single-character tokens kept as Lucene's
StandardTokenizer keeps them (bm25s's own default pattern drops them). A retriever used directly,
with no language given, analyses English.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from harness import progress
from harness.data.corpus import Documents
from harness.retrievers.base import Retriever, as_documents
from harness.runs import Run, tie_ranks, top_k
from harness.text import AUTO, Analyzer, analyzer_for, language_code
from harness.text.base import versions

log = logging.getLogger(__name__)
DEFAULT_LANGUAGE = "en"


class BM25Retriever(Retriever):
    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        language: str = AUTO,
        stemmer: str | None = AUTO,
        stopwords: str | list[str] | None = AUTO,
        token_pattern: str = AUTO,
        lowercase: bool = True,
    ):
        """``language``: ``auto`` (the dataset's), a language code (``ja``) or an analyser name
        (``words``, ``cjk-bigrams``, ``ja-sudachi``, ``th-newmm``). ``stemmer`` (a PyStemmer
        algorithm or null), ``stopwords`` (a bm25s list's language code, a list, or null) and
        ``token_pattern`` replace the language's own choices in word analysers; ``auto`` keeps them."""
        self.k1, self.b, self.method = float(k1), float(b), method
        self.language = language
        self._options = {"stemmer": stemmer, "stopwords": stopwords, "token_pattern": token_pattern,
                         "lowercase": lowercase}
        self._dataset_language: str | None = None
        # An explicit language is checked now; `auto` waits for the dataset's (or English).
        self._analyzer: Analyzer | None = None if language == AUTO else analyzer_for(language, **self._options)
        self._model = None
        self._doc_ids: list[str] = []
        self._tie_ranks = np.zeros(0, dtype=np.int64)

    def set_language(self, language: str) -> None:
        self._dataset_language = language
        if self.language == AUTO:
            self._analyzer = analyzer_for(language, **self._options)
        elif self._analyzer.language != language_code(language):
            log.warning("bm25: the dataset's language is %r, but the retriever analyses %r as configured",
                        language, self.language)

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = analyzer_for(DEFAULT_LANGUAGE, **self._options)
        return self._analyzer

    def settings(self) -> dict[str, Any]:
        return {
            "bm25": {"method": self.method, "k1": self.k1, "b": self.b},
            "implementation": versions("bm25s"),
            "language": {"requested": self.language, "dataset": self._dataset_language},
            "tokenizer": self.analyzer.describe(),
            "max_length": "not applied: BM25 indexes whole texts",
        }

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        return self.analyzer.analyze(texts)

    def index(self, documents: Documents | list[str], texts: list[str] | None = None) -> None:
        import bm25s

        documents = as_documents(documents, texts)
        self._doc_ids = list(documents.ids)
        self._tie_ranks = tie_ranks(self._doc_ids)
        # Analysed a batch at a time: only the terms are held, never every text (BM25's own index
        # is in memory; see the README for the corpus sizes that suits).
        tokens = [t for batch in documents.batches() for t in self.tokenize(batch)]
        self._model = None
        if any(tokens):  # bm25s cannot index a corpus without one term; every score is then 0
            self._model = bm25s.BM25(method=self.method, k1=self.k1, b=self.b)
            self._model.index(tokens, show_progress=False)

    def _scores(self, tokens: list[str]) -> np.ndarray:
        if not tokens or self._model is None:
            return np.zeros(len(self._doc_ids), dtype=np.float32)
        return self._model.get_scores(tokens)

    def search(self, ids: list[str], texts: list[str], k: int) -> Run:
        k = min(k, len(self._doc_ids))
        out: dict[str, dict[str, float]] = {}
        for qid, tokens in progress.counted(zip(ids, self.tokenize(texts)), "BM25 search", len(ids), "queries"):
            scores = self._scores(tokens)
            top = top_k(scores, k, self._tie_ranks)
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
