"""The retriever plug-in protocol.

A retriever is a class constructed from keyword parameters (the suite's ``params``) with:

- ``set_max_length(query, document)``: the suite's token limits (``None``: the model's own),
  given before anything else; a retriever that ignores them says so in ``settings()``;
- ``set_language(language)``: the dataset's language code (the suite's ``language``, e.g. ``ja``),
  given with the lengths, before ``settings()``; a retriever whose text processing depends on the
  language (BM25's analyser) chooses it here;
- ``settings()``: everything about it that changes scores (tokenizer, weights, lengths it
  applies); it enters the protocol card's ``system`` section and the result's key;
- ``index(ids, texts)``: take the corpus, in order;
- ``search(ids, texts, k)``: top ``k`` documents per query, as a ``Run``;
- ``rerank(ids, texts, candidates)``: score each query's given candidates (doc ids);
- ``cost()``: optional measurements of the last index/search (bytes, throughput), stored with
  the result.
"""

from __future__ import annotations

import abc
from typing import Any

from harness.runs import Run


class Retriever(abc.ABC):
    def set_max_length(self, query: int | None, document: int | None) -> None:
        """Default: lengths do not apply (e.g. BM25 indexes whole texts)."""

    def set_language(self, language: str) -> None:
        """Default: the language does not matter (e.g. a multilingual encoder)."""

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def index(self, ids: list[str], texts: list[str]) -> None: ...

    @abc.abstractmethod
    def search(self, ids: list[str], texts: list[str], k: int) -> Run: ...

    def rerank(self, ids: list[str], texts: list[str], candidates: dict[str, list[str]]) -> Run:
        raise NotImplementedError(f"{type(self).__name__} does not implement rerank()")

    def cost(self) -> dict[str, Any]:
        return {}
