"""Suite source kinds for data of the user's and of other benchmarks: ``local`` (BEIR folders,
TSV collections) and ``mteb`` (MTEB tasks). Apart from ``harness.suite_schema``, which puts them in
its ``Source`` union beside ``ir_datasets`` and ``huggingface``, to keep each module small."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LocalSource(_Strict):
    """A collection on disk. ``format: beir`` is BEIR's folder layout (``corpus.jsonl``,
    ``queries.jsonl``, ``qrels/<split>.tsv``); ``format: trec`` a TSV collection (``id<TAB>text``
    or ``id<TAB>title<TAB>text``), TSV topics (``id<TAB>text``) and a TREC qrels file. File names
    are relative to ``path``; ``candidates`` is an optional TREC run whose rankings are the
    re-ranking candidates, in rank order.

    ``path`` is where the files are, not what they are: it stays out of the protocol card (the
    files' checksums, its revision, say what was read), so the same files compare anywhere."""

    kind: Literal["local"]
    path: Path = Field(exclude=True)
    format: Literal["beir", "trec"]
    documents: str | None = None  # default: corpus.jsonl (beir), collection.tsv (trec)
    queries: str | None = None  # default: queries.jsonl (beir), topics.tsv (trec)
    judgments: str | None = None  # default: qrels/<the dataset's split>.tsv (beir), qrels.txt (trec)
    candidates: str | None = None

    def files(self) -> dict[str, str]:
        """The file of each part, relative to ``path``."""
        beir = self.format == "beir"
        named = {"documents": self.documents or ("corpus.jsonl" if beir else "collection.tsv"),
                 "queries": self.queries or ("queries.jsonl" if beir else "topics.tsv"),
                 "judgments": self.judgments or ("qrels/test.tsv" if beir else "qrels.txt")}
        return {**named, **({"candidates": self.candidates} if self.candidates else {})}

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.format}"


class MtebSource(_Strict):
    """An MTEB retrieval or re-ranking task, read through mteb's own loader at the dataset revision
    MTEB pins. ``subset`` is its hf_subset (needed when it has several, e.g. a language);
    ``split`` defaults to the dataset's."""

    kind: Literal["mteb"]
    task: str = Field(min_length=1)
    subset: str | None = None
    split: str | None = None

    @property
    def id(self) -> str:
        return f"{self.task}/{self.subset or 'default'}/{self.split or ''}".rstrip("/")
