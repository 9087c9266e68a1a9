"""``ProtocolCard``: everything that changes a score, as one canonical JSON object and its hashes.

Two hashes, because a table compares different systems under one protocol:

- ``protocol_hash`` covers the evaluation protocol: data source and revision, split, how texts are
  built, length limits, filters and drops, mode, depth, metrics. Results are comparable only
  when it matches.
- ``card_hash`` adds the ``system`` section: what the retriever did to the text (tokenizer,
  stemmer, stop words, its own length handling). It identifies one result.

Display labels (suite and dataset names, a dataset's group) are carried but hashed by neither, so the same data
under the same protocol compares across suites.

The card says what is evaluated, not which library versions read it: a dataset's revision is its
files' checksums or commits, and library versions go to the result's ``environment``, so that
upgrading a package leaves stored results comparable. How the harness itself scores is versioned
apart, by ``SCORING_VERSION``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.hashing import sha256

SCHEMA_VERSION = 1
# The version of the harness's own scoring: bump it in the commit that changes what a retriever
# scores or stores for the same inputs (encoding, skiplists, pooling, MaxSim, metric code), so
# results and cached vectors computed before are neither skipped to nor reused. It is in the result
# key and in every vector store's key, not in the protocol card: old results stay comparable.
SCORING_VERSION = 1
# ``group`` (CQADupStack's forums) only tells reports how to average: a label, like the names.
_LABELS = ("suite", "dataset", "group", "in_average")
# How tables and comparisons mark a number measured under another protocol (when forced).
MISMATCH_MARK = "†"


class ProtocolCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    suite: str
    dataset: str
    group: str | None = None
    in_average: bool = True
    source: dict[str, Any]
    revision: dict[str, Any]
    language: str
    split: str
    text: dict[str, Any]
    max_length: dict[str, Any]
    mode: str
    candidates: dict[str, Any] | None
    depth: int
    remove_self_matches: bool
    filters: dict[str, Any]
    metrics: list[str]
    main_metric: str
    system: dict[str, Any] = {}

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def protocol_hash(self) -> str:
        fields = {k: v for k, v in self.to_dict().items() if k not in _LABELS and k != "system"}
        return sha256(fields)

    @property
    def card_hash(self) -> str:
        fields = {k: v for k, v in self.to_dict().items() if k not in _LABELS}
        return sha256(fields)

    def differences(self, other: ProtocolCard) -> list[str]:
        """Top-level fields whose values differ, for error messages."""
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in a if k not in _LABELS and a[k] != b.get(k))
