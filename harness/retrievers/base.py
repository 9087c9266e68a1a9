"""The retriever plug-in protocol.

A retriever is a class constructed from keyword parameters (the suite's ``params``) with:

- ``settings()``: everything about it that changes scores (tokenizer, weights, lengths it
  applies); it enters the protocol card's ``system`` section and the result's key;
- ``index(ids, texts, max_length=None)``: take the corpus, in order;
- ``search(ids, texts, k, max_length=None)``: top ``k`` documents per query, as a ``Run``;
- ``rerank(ids, texts, candidates, max_length=None)``: score each query's given candidates.

``max_length`` carries the suite's token limits; a retriever that ignores them says so in
``settings()``.
"""

from __future__ import annotations

import abc
from typing import Any

from harness.runs import Run


class Retriever(abc.ABC):
    @abc.abstractmethod
    def settings(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def index(self, ids: list[str], texts: list[str], max_length: int | None = None) -> None: ...

    @abc.abstractmethod
    def search(self, ids: list[str], texts: list[str], k: int, max_length: int | None = None) -> Run: ...

    def rerank(
        self, ids: list[str], texts: list[str], candidates: dict[str, list[str]], max_length: int | None = None
    ) -> Run:
        raise NotImplementedError(f"{type(self).__name__} does not implement rerank()")
