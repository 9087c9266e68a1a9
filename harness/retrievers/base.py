"""The retriever plug-in protocol.

A retriever is a class constructed from keyword parameters (the suite's ``params``) with:

- ``set_max_length(query, document)``: the suite's token limits (``None``: the model's own),
  given before anything else; a retriever that ignores them says so in ``settings()``;
- ``set_language(language)``: the dataset's language code (the suite's ``language``, e.g. ``ja``),
  given with the lengths, before ``settings()``; a retriever whose text processing depends on the
  language (BM25's analyser) chooses it here;
- ``settings()``: everything about it that changes scores (tokenizer, weights, lengths it
  applies); it enters the protocol card's ``system`` section and the result's key;
- ``index(documents)``: take the corpus, in order: a ``Documents`` (harness/data/corpus.py) with
  ``ids`` and texts read in batches (``batches()``, ``texts(first, stop)``), so that a corpus of
  10^8 passages is never held as one list. A class written for the old form ``index(ids, texts)``
  still works (``index_corpus`` hands it both lists, which holds the corpus in memory);
- ``search(ids, texts, k)``: top ``k`` documents per query, as a ``Run``;
- ``rerank(ids, texts, candidates)``: score each query's given candidates (doc ids);
- ``cost()``: optional measurements of the last index/search (bytes, throughput), stored with
  the result.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any

from harness.data.corpus import Documents
from harness.runs import Run


class Retriever(abc.ABC):
    def set_max_length(self, query: int | None, document: int | None) -> None:
        """Default: lengths do not apply (e.g. BM25 indexes whole texts)."""

    def set_language(self, language: str) -> None:
        """Default: the language does not matter (e.g. a multilingual encoder)."""

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def index(self, documents: Documents) -> None: ...

    @abc.abstractmethod
    def search(self, ids: list[str], texts: list[str], k: int) -> Run: ...

    def rerank(self, ids: list[str], texts: list[str], candidates: dict[str, list[str]]) -> Run:
        raise NotImplementedError(f"{type(self).__name__} does not implement rerank()")

    def cost(self) -> dict[str, Any]:
        return {}


def as_documents(documents: Documents | list[str], texts: list[str] | None = None) -> Documents:
    """``index``'s argument as ``Documents``: given as is, or two lists (ids, texts), the short
    form for small corpora and tests."""
    if isinstance(documents, Documents):
        return documents
    return Documents.from_lists(list(documents), list(texts or []))


def index_corpus(retriever, documents: Documents) -> None:
    """``retriever.index(documents)``, or ``index(ids, texts)`` for a class written for that form."""
    required = [p for p in inspect.signature(retriever.index).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(required) >= 2:
        retriever.index(documents.ids, documents.texts())
    else:
        retriever.index(documents)
