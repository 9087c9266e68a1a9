"""The suite schema: what a suite file may say, as pydantic models (datasets, sources, checks,
retrievers). Loading the YAML, and pointing errors at file lines, is ``harness.suite``'s job.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PositiveInt, Tag, field_validator, model_validator

from harness.errors import DataUnavailableError, UnknownNameError
from harness.metrics import DEFAULT_METRICS, parse_metric
from harness.suite_sources import LocalSource, MtebSource


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Policy(str, Enum):
    """What loading does with invalid data: stop with an error, drop it, or keep it; drops and
    keeps are counted."""

    error = "error"
    drop = "drop"
    keep = "keep"


class Checks(_Strict):
    """``empty_documents: keep`` searches them as empty texts (BEIR keeps them); ``drop`` takes them
    out of the corpus, their judgments staying. ``unknown_judgments: keep`` keeps judgments naming
    documents absent from the corpus in the ideal ranking, as trec_eval and BEIR do; judgments of
    queries with no text are left out (no run holds them) and counted."""

    duplicate_ids: Policy = Policy.error
    empty_documents: Policy = Policy.keep
    empty_queries: Policy = Policy.error
    unknown_judgments: Policy = Policy.keep

    @field_validator("duplicate_ids", "empty_queries")
    @classmethod
    def _error_or_drop(cls, value: Policy, info) -> Policy:
        if value is Policy.keep:
            raise ValueError(f"`keep` does not apply to {info.field_name}: give `error` or `drop`")
        return value

    @field_validator("unknown_judgments")
    @classmethod
    def _judgments_stay(cls, value: Policy) -> Policy:
        if value is Policy.drop:
            raise ValueError(
                "judgments naming documents absent from the corpus are not dropped: trec_eval and BEIR keep "
                "them in the ideal ranking, and dropping them raises nDCG and recall above the published "
                "figures. Give `keep` (the default) or `error`")
        return value


class IrDatasetsSource(_Strict):
    """Data read through ir_datasets, by its hierarchical id (``beir/scifact/test``)."""

    kind: Literal["ir_datasets"]
    id: str = Field(min_length=1)


_COMMIT_SHA = r"[0-9a-f]{40}"
_HUB_REPO = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$"  # owner/name


def _pinned(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(_COMMIT_SHA, value):
        raise ValueError(
            f"revision {value!r} is not a commit: give the full 40-character commit sha of the hub repo "
            "(a branch or tag such as 'main' moves, so it pins nothing; the repo's 'Files and versions' "
            "history lists the commits)"
        )
    return value


class HubPart(_Strict):
    """One part of a Hugging Face source: files of a hub dataset repo at a pinned commit, and which
    of their columns hold what.

    ``files`` are paths inside the repo, what a dataset card's config and split resolve to (e.g.
    config ``ar-corpus``, split ``dev`` -> ``ar-corpus/dev-*``); ``*`` and ``?`` match within one
    folder, against the repo's files at that commit. ``repo`` and ``revision`` default to the
    source's own. ``where`` keeps only the rows whose column equals the given value.

    A column reference is a column name; ``list.field`` for that field of every item of a list
    column (``positive_passages.docid``); or a template such as ``"q##{positive}"`` built from
    columns."""

    repo: str | None = Field(default=None, pattern=_HUB_REPO)
    revision: str | None = None
    files: list[str] = Field(min_length=1)
    where: dict[str, str] = Field(default_factory=dict)

    @field_validator("revision")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        return _pinned(value)


class HubDocuments(HubPart):
    id: str
    text: str
    title: str | None = None


class HubQueries(HubPart):
    id: str
    text: str


class HubJudgments(HubPart):
    query_id: str
    doc_id: str  # a column of ids or of lists of ids (LoCo's answer_pids), or `list.field`
    relevance: int | str = 1  # a grade column, or the grade of every document the row names


class HubCandidates(HubPart):
    """Documents to re-rank per query, in the given order: rows in file order, and within a row
    the ``doc_ids`` columns in the order listed (each an id or a list of ids)."""

    query_id: str
    doc_ids: list[str] = Field(min_length=1)


class HuggingFaceSource(_Strict):
    """Data read from Hugging Face hub dataset repos at pinned commits, through the hub cache."""

    kind: Literal["huggingface"]
    repo: str = Field(pattern=_HUB_REPO)
    revision: str
    documents: HubDocuments
    queries: HubQueries
    judgments: HubJudgments
    candidates: HubCandidates | None = None

    @field_validator("revision")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        return _pinned(value)

    def parts(self) -> dict[str, HubPart]:
        named = {"documents": self.documents, "queries": self.queries, "judgments": self.judgments,
                 "candidates": self.candidates}
        return {name: part for name, part in named.items() if part is not None}

    def location(self, part: HubPart) -> tuple[str, str]:
        """(repo, commit) a part reads from."""
        return part.repo or self.repo, part.revision or self.revision

    @property
    def id(self) -> str:
        """A readable label (cache folder names, `harness list`): where the queries come from. The
        cache key itself hashes the whole source, column mapping included."""
        repo, commit = self.location(self.queries)
        return f"{repo}@{commit[:7]}:{self.queries.files[0]}"


SOURCE_KINDS = ("ir_datasets", "huggingface", "local", "mteb")


def _kind(value: Any) -> str | None:
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


# One model per `kind`; an unknown or missing kind is one error naming the kinds there are.
Source = Annotated[
    Annotated[IrDatasetsSource, Tag("ir_datasets")] | Annotated[HuggingFaceSource, Tag("huggingface")]
    | Annotated[LocalSource, Tag("local")] | Annotated[MtebSource, Tag("mteb")],
    Discriminator(_kind, custom_error_type="source_kind",
                  custom_error_message="`kind` is missing or unknown: a source's kind is one of "
                                       + ", ".join(SOURCE_KINDS)),
]


class TextSpec(_Strict):
    document_fields: list[Literal["title", "text"]] = Field(default=["title", "text"], min_length=1)
    separator: str = " "


class MaxLength(_Strict):
    """Token limits for neural encoders; ``null`` means the model's own limit."""

    query: PositiveInt | None = None
    document: PositiveInt | None = None


class Candidates(_Strict):
    """For re-ranking: candidates given with the dataset, or a first stage's top ``depth``."""

    source: Literal["dataset", "retriever"]
    retriever: str | None = None
    depth: PositiveInt = 100

    @model_validator(mode="after")
    def _retriever_named(self):
        if self.source == "retriever" and not self.retriever:
            raise ValueError("candidates from a retriever need `retriever: <name>`")
        return self


class Expected(_Strict):
    """What the source must give, from the dataset's official files. Counted as the source yields
    the rows, before the checks drop any (drops are reported apart, in the protocol card), so the
    numbers are the files' own: ``judgments`` counts judgment lines of every grade, 0 included;
    ``grades`` is the set of relevance grades those lines use."""

    documents: PositiveInt | None = None
    queries: PositiveInt | None = None
    judgments: PositiveInt | None = None
    grades: list[int] | None = Field(default=None, min_length=1)

    @field_validator("grades")
    @classmethod
    def _sorted_unique(cls, value: list[int] | None) -> list[int] | None:
        return sorted(set(value)) if value is not None else None


class Sample(_Strict):
    """A smoke run on part of the data: ``queries`` judged queries (seeded choice), and a corpus of
    their judged documents and the dataset's re-ranking candidates for them, plus seeded random
    others up to ``documents``. It is in the protocol card, so sampled numbers never compare with
    full runs."""

    queries: PositiveInt | None = None
    documents: PositiveInt | None = None
    seed: int = 0


class MtebTask(_Strict):
    """The MTEB task a dataset is: where ``harness export --format mteb`` files its results and
    ``harness import-mteb`` finds reference numbers. A label, outside the protocol card: it changes
    no score. ``subset`` is MTEB's hf_subset (default: the task's only one, else the dataset's
    language); ``split`` defaults to the dataset's."""

    task: str = Field(min_length=1)
    subset: str | None = None
    split: str | None = None


class DatasetSpec(_Strict):
    name: str
    # Absent only for a dataset listed as `unavailable` (one that cannot be had).
    source: Source | None = None
    language: str = Field(min_length=2)
    split: str
    text: TextSpec = TextSpec()
    max_length: MaxLength = MaxLength()
    remove_self_matches: bool = False
    mode: Literal["full", "rerank"] = "full"
    candidates: Candidates | None = None
    depth: PositiveInt = 1000
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    main_metric: str = "ndcg@10"
    checks: Checks = Checks()
    expected: Expected = Expected()
    sample: Sample | None = None
    # Members of one group (CQADupStack's 12 forums) count once in a suite's average, as their mean.
    # A label for reports: it changes no score, so it stays out of the protocol hash.
    group: str | None = Field(default=None, min_length=1)
    # False for a dataset reported beside a suite but outside its average (BEIR's MS MARCO: in
    # domain for most models, so not part of the zero-shot average).
    in_average: bool = True
    mteb: MtebTask | None = None
    # Why the dataset cannot be run (e.g. a licensed corpus); it is listed, and refused by `run`.
    unavailable: str | None = Field(default=None, min_length=1)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                parse_metric(name)
            except UnknownNameError as e:
                raise ValueError(str(e)) from None
        return [m.strip().lower() for m in value]

    @model_validator(mode="after")
    def _consistent(self):
        if self.main_metric.strip().lower() not in self.metrics:
            raise ValueError(f"main_metric {self.main_metric!r} is not one of metrics {self.metrics}")
        if self.mode == "rerank" and self.candidates is None:
            raise ValueError("mode: rerank needs `candidates` (source: dataset, or source: retriever)")
        if self.mode == "full" and self.candidates is not None:
            raise ValueError("`candidates` only applies to mode: rerank")
        if self.source is None and self.unavailable is None:
            raise ValueError("`source` is required (or `unavailable: <reason>` for a dataset that cannot be had)")
        return self

    def require_available(self, suite_name: str = "", suite_path: str | Path = "") -> None:
        """Refuse, with the suite's reason, a dataset listed as unavailable."""
        if self.unavailable is not None:
            where = f" of suite {suite_name!r}" if suite_name else ""
            where += f" ({suite_path})" if suite_path else ""
            raise DataUnavailableError(
                f"Dataset {self.name!r}{where} is listed but cannot be run: {self.unavailable}. "
                "`harness list` shows the datasets that can."
            )


class RetrieverSpec(_Strict):
    """A retriever by registry name or dotted path (``pkg.module:Class``), with its parameters.
    ``sweep`` maps parameters to lists of values: one configuration per combination, named
    ``name@param=value``."""

    class_: str = Field(alias="class", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("sweep")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in value.items():
            if not values:
                raise ValueError(f"sweep over {name!r} lists no values")
        return value

    def expand(self, name: str) -> dict[str, RetrieverSpec]:
        if not self.sweep:
            return {name: self}
        import itertools

        keys = list(self.sweep)
        out = {}
        for values in itertools.product(*(self.sweep[k] for k in keys)):
            label = name + "@" + ",".join(f"{k}={v}" for k, v in zip(keys, values))
            out[label] = RetrieverSpec(class_=self.class_, params={**self.params, **dict(zip(keys, values))})
        return out


class Suite(_Strict):
    name: str
    path: Path
    description: str = ""
    datasets: dict[str, DatasetSpec]
    retrievers: dict[str, RetrieverSpec] = Field(default_factory=dict)

    def dataset(self, name: str) -> DatasetSpec:
        if name not in self.datasets:
            raise UnknownNameError(
                f"Suite {self.name!r} ({self.path}) has no dataset {name!r}. "
                f"Its datasets are: {', '.join(self.datasets)}. Run `harness list` to see every suite."
            )
        return self.datasets[name]

    def retriever_configs(self) -> dict[str, RetrieverSpec]:
        """Every configuration the suite names, sweeps expanded."""
        return {label: spec for name, spec in self.retrievers.items() for label, spec in spec.expand(name).items()}

    def retriever(self, name: str) -> RetrieverSpec:
        """The suite's configuration for ``name`` (a configured name, or one sweep point of it);
        a name the suite does not list means the registered retriever of that name with its
        default parameters."""
        configs = self.retriever_configs()
        if name in configs:
            return configs[name]
        if name in self.retrievers:  # the whole sweep's base name: its first point
            return next(iter(self.retrievers[name].expand(name).values()))
        return RetrieverSpec(class_=name)
