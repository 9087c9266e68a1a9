"""Collections on disk as a source: BEIR's folder layout (``format: beir``), or a TSV collection
with TSV topics and a TREC qrels file (``format: trec``), with an optional TREC run whose rankings
are re-ranking candidates.

The revision is the SHA-256 of every file read, so the Parquet cache is keyed by the files'
content: an edited file is read again, a moved folder is not. Every malformed line is an error
naming the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.data.sources import RawData
from harness.errors import DataError, DataUnavailableError, FormatError
from harness.formats import trec
from harness.hashing import file_sha256
from harness.suite_sources import LocalSource


def _paths(source: LocalSource, where: str) -> dict[str, Path]:
    paths = {part: source.path / name for part, name in source.files().items()}
    missing = [f"{part}: {path}" for part, path in paths.items() if not path.is_file()]
    if missing:
        layout = ("corpus.jsonl, queries.jsonl and qrels/<split>.tsv" if source.format == "beir"
                  else "collection.tsv, topics.tsv and qrels.txt")
        raise DataUnavailableError(
            f"{where}: the local source {source.path} lacks {'; '.join(missing)}. A `format: {source.format}` "
            f"folder holds {layout}; put the files there, or name them in the suite's `source.documents`, "
            "`source.queries`, `source.judgments` (paths relative to `source.path`).")
    return paths


def revision(source: LocalSource) -> dict:
    """The SHA-256 of each file, by its name relative to ``path``; absent files are left for
    ``read`` to report with the layout the format expects."""
    files = {name: source.path / name for name in source.files().values()}
    return {"files_sha256": {name: file_sha256(path) for name, path in sorted(files.items()) if path.is_file()},
            "format": source.format}


def read(source: LocalSource, where: str) -> RawData:
    paths = _paths(source, where)
    if source.format == "beir":
        documents = [(i, row.get("title") or "", row.get("text") or "")
                     for i, row in _jsonl(paths["documents"], ("_id",), "corpus")]
        queries = [(i, row.get("text") or "") for i, row in _jsonl(paths["queries"], ("_id",), "queries")]
    else:
        documents = [(fields[0], *(fields[1:] if len(fields) == 3 else ("", fields[1])))
                     for fields in _tsv(paths["documents"], (2, 3), "collection (id, text or id, title, text)")]
        queries = [(q, text) for q, text in _tsv(paths["queries"], (2,), "topics (id, text)")]
    judgments = [(q, d, g) for q, docs in trec.read_qrels(paths["judgments"]).items() for d, g in docs.items()]
    candidates = _candidates(paths["candidates"], documents, where) if "candidates" in paths else None
    return RawData(documents=documents, queries=queries, judgments=judgments, candidates=candidates)


def _jsonl(path: Path, required: tuple[str, ...], what: str):
    """(id, row) of each line of a BEIR JSON-lines file."""
    with trec.text_lines(path, f"BEIR {what}") as lines:
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                raise FormatError(f"{path}:{number}: not a JSON object ({e.msg} at column {e.pos + 1}). Each line "
                                  "of a BEIR file is one JSON object such as {\"_id\": \"1\", \"text\": \"...\"}.") from None
            if not isinstance(row, dict) or any(row.get(k) in (None, "") for k in required):
                raise FormatError(f"{path}:{number}: the line has no `_id`; each line of a BEIR {what} file is an "
                                  "object with `_id` and `text` (documents may add `title`).")
            if not isinstance(row.get("text", ""), str) or not isinstance(row.get("title", ""), (str, type(None))):
                raise FormatError(f"{path}:{number}: `text` and `title` must be strings.")
            yield str(row["_id"]), row


def _tsv(path: Path, widths: tuple[int, ...], what: str):
    with trec.text_lines(path, f"TSV {what}") as lines:
        for number, line in lines:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) not in widths or not fields[0].strip():
                raise FormatError(
                    f"{path}:{number}: a line of the {what} file has {' or '.join(map(str, widths))} tab-separated "
                    f"fields, the first an id; this one has {len(fields)}: {line[:80]!r}. Tabs inside a text "
                    "must be replaced by spaces.")
            yield [fields[0].strip(), *fields[1:]]


def _candidates(path: Path, documents: list[tuple[str, str, str]], where: str) -> dict[str, list[str]]:
    """Each query's ranking in the run, in its rank column's order (the order its system gave)."""
    ranked = trec.read_ranked_run(path)
    known = {d[0] for d in documents}
    unknown = [f"{q}/{d}" for q, rows in ranked.items() for d, _, _ in rows if d not in known]
    if unknown:
        raise DataError(
            f"{where}: the candidates run {path} names {len(unknown)} documents (query/document) that the "
            f"collection does not hold: {', '.join(unknown[:5])}{' and more' if len(unknown) > 5 else ''}. The run "
            "and the collection must be of the same corpus.")
    return {q: [d for d, _, _ in sorted(rows, key=lambda r: r[1])] for q, rows in ranked.items()}
