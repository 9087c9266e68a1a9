"""Data sources by ``kind``. Each module turns one kind of source into ``RawData`` rows and
names its revision; checks and caching happen once, in ``harness.data.load``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RawData:
    """Rows as the source gives them, before checks: documents as (id, title, text)."""

    documents: list[tuple[str, str, str]]
    queries: list[tuple[str, str]]
    judgments: list[tuple[str, str, int]]
    candidates: dict[str, list[str]] | None = None
    notes: dict[str, int] = field(default_factory=dict)


def get_source(kind: str):
    if kind == "ir_datasets":
        from harness.data.sources import irds

        return irds
    raise ValueError(f"unknown source kind {kind!r}")  # unreachable: the suite schema validates kinds
