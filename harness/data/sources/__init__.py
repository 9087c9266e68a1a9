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


class _ById:
    """ir_datasets names a dataset by one id string; the loader hands every source its whole
    suite entry (a Hugging Face source is a mapping of parts), so this passes the id on."""

    def __init__(self, module):
        self.module = module

    def revision(self, source) -> dict:
        return self.module.revision(source.id)

    def read(self, source, where: str) -> RawData:
        return self.module.read(source.id, where)


# The libraries that parse each kind's files into rows. Their versions key the Parquet cache (a
# parser change alters the cached rows: a new release reads the files again) but not the protocol
# card, which names the files read: upgrading the parser leaves stored results comparable.
# Hub files are parsed by the harness's own code (pyarrow only reads Parquet's typed columns).
PARSERS = {"ir_datasets": ("ir_datasets",), "huggingface": (), "local": (), "mteb": ("mteb", "datasets")}


def get_source(kind: str):
    """The reader of a source kind: ``revision(source) -> dict`` and ``read(source, where) -> RawData``,
    both taking the suite entry's ``source``."""
    if kind == "ir_datasets":
        from harness.data.sources import irds

        return _ById(irds)
    if kind == "huggingface":
        from harness.data.sources import huggingface

        return huggingface
    if kind == "local":
        from harness.data.sources import local

        return local
    if kind == "mteb":
        from harness.data.sources import mteb_tasks

        return mteb_tasks
    raise ValueError(f"unknown source kind {kind!r}")  # unreachable: the suite schema validates kinds
