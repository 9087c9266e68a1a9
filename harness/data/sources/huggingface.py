"""Hugging Face hub dataset repos as a source.

Each part of the source (documents, queries, judgments, candidates) names files of a hub dataset
repo at a pinned commit. The files are resolved through huggingface_hub's cache (offline it reads
``$HF_HUB_CACHE``, by default ``$HF_HOME/hub``; online it downloads into it) and read as the
repos hold them: Parquet with pyarrow, JSON lines (gzipped or not) with ``json``.

Files are read directly rather than through ``datasets.load_dataset`` because a file at a commit
is exactly what a pin means, and because several benchmark repos still ship loading scripts that
recent ``datasets`` releases refuse to run.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.data.sources import RawData
from harness.errors import DataError, DataUnavailableError
from harness.hashing import sha256
from harness.suite_schema import HubPart, HuggingFaceSource

READABLE = (".parquet", ".jsonl", ".jsonl.gz")
_SHARD = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<total>\d{5})(?P<ext>\.[^/]*)$")


def revision(source: HuggingFaceSource) -> dict:
    """The commits read, and a hash of the whole source: the cache key changes with the column
    mapping as well as with the data."""
    commits = {}
    for part in source.parts().values():
        repo, commit = source.location(part)
        commits[repo] = commit
    return {"hub_commits": dict(sorted(commits.items())), "source_sha256": sha256(source.model_dump(mode="json"))}


def hub_cache() -> tuple[Path, str]:
    """The hub cache folder huggingface_hub uses, read from the environment now (huggingface_hub
    reads it once, at import), and which variable set it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expanduser(os.environ["HF_HUB_CACHE"])), "HF_HUB_CACHE"
    if os.environ.get("HF_HOME"):
        home = Path(os.path.expanduser(os.environ["HF_HOME"]))
        return home / "hub", f"HF_HOME={home}, whose hub/ folder it is"
    base = Path(os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or "~/.cache"))
    return base / "huggingface" / "hub", "the default: neither HF_HOME nor HF_HUB_CACHE is set"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def read(source: HuggingFaceSource, where: str) -> RawData:
    files = _resolve(source, where)
    documents = _documents(source, files["documents"], where)
    queries = _queries(source, files["queries"], where)
    judgments = _judgments(source, files["judgments"], where)
    candidates = _candidates(source, files["candidates"], where) if source.candidates else None
    if candidates is not None:
        known = {d[0] for d in documents}
        unknown = [f"{q}/{d}" for q, docs in candidates.items() for d in docs if d not in known]
        if unknown:
            raise DataError(
                f"{where}: {len(unknown)} candidates (query/document) name documents that `source.documents` "
                f"does not hold: {', '.join(unknown[:5])}{' and more' if len(unknown) > 5 else ''}. The "
                "candidates and documents must come from the same release: check both parts' files and revisions."
            )
    return RawData(documents=documents, queries=queries, judgments=judgments, candidates=candidates)


# -- resolving files through the hub cache ------------------------------------------------------

class _File:
    """A file of a repo at a commit, and where the cache holds it."""

    def __init__(self, repo: str, commit: str, name: str, path: Path):
        self.repo, self.commit, self.name, self.path = repo, commit, name, path

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit[:7]}:{self.name}"


def _resolve(source: HuggingFaceSource, where: str) -> dict[str, list[_File]]:
    """Every file of every part, or one error listing all that are missing."""
    from huggingface_hub import hf_hub_download

    cache, _ = hub_cache()
    offline = _offline()
    resolved: dict[str, list[_File]] = {}
    missing: dict[tuple[str, str, str], str] = {}  # (repo, commit, file or pattern) -> why
    found: dict[tuple[str, str, str], Path] = {}
    for name, part in source.parts().items():
        repo, commit = source.location(part)
        out = resolved.setdefault(name, [])
        for entry in part.files:
            names, problems = (_expand(repo, commit, entry, cache, offline) if _is_pattern(entry)
                               else ([entry], []))
            missing.update(((repo, commit, what), why) for what, why in problems)
            for file in names:
                if not file.endswith(READABLE):
                    raise DataError(
                        f"{where}: `source.{name}` names {repo}:{file}, which this source cannot read; it "
                        f"reads {', '.join(READABLE)} files. Name the Parquet or JSON-lines files of the repo."
                    )
                key = (repo, commit, file)
                if key not in found and key not in missing:  # parts often share a file
                    try:
                        found[key] = Path(hf_hub_download(repo, file, repo_type="dataset", revision=commit,
                                                          cache_dir=cache, local_files_only=offline))
                    except Exception as e:  # huggingface_hub raises several unrelated classes
                        missing[key] = _why(e)
                if key in found:
                    out.append(_File(repo, commit, file, found[key]))
    if missing:
        raise _unavailable(missing, where, offline)
    return resolved


def _is_pattern(entry: str) -> bool:
    return "*" in entry or "?" in entry


def _pattern(entry: str) -> re.Pattern:
    # Like a dataset card's data_files: `*` and `?` stay within one folder.
    return re.compile("".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in entry))


def _expand(repo: str, commit: str, entry: str, cache: Path, offline: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Files of the repo at the commit that match the pattern: listed by the hub when it can be
    reached, else from the cache's snapshot, which may hold only some shards; shards named
    ``-NNNNN-of-NNNNN`` are checked for completeness either way."""
    listing = None
    why_none = "the hub lists no file of the repo at this commit that matches it: check the suite's files"
    if not offline:
        try:
            from huggingface_hub import HfApi

            listing = HfApi().list_repo_files(repo, repo_type="dataset", revision=commit)
        except Exception:  # no connection: the cache's snapshot is all there is
            listing = None
    if listing is None:
        snapshot = cache / ("datasets--" + repo.replace("/", "--")) / "snapshots" / commit
        files = snapshot.rglob("*") if snapshot.is_dir() else []
        listing = [p.relative_to(snapshot).as_posix() for p in files if p.is_file()]
        why_none = "not in the cache: no file of the cached snapshot matches it"
    pattern = _pattern(entry)
    names = sorted(n for n in listing if pattern.fullmatch(n))
    if not names:
        return [], [(entry, why_none)]
    shards: dict[tuple[str, str, int], set[int]] = {}
    for n in names:
        m = _SHARD.match(n)
        if m:
            shards.setdefault((m["stem"], m["ext"], int(m["total"])), set()).add(int(m["index"]))
    problems = [(f"{stem}-{i:05d}-of-{total:05d}{ext}", "a shard of a matched set is absent")
                for (stem, ext, total), have in shards.items() for i in range(total) if i not in have]
    return names, problems


def _why(error: Exception) -> str:
    kind = type(error).__name__
    if kind in {"RemoteEntryNotFoundError", "RevisionNotFoundError", "RepositoryNotFoundError", "GatedRepoError"}:
        return f"the hub answered {kind}: check the suite's repo, revision and file names"
    return "not in the cache"


def _unavailable(missing: dict[tuple[str, str, str], str], where: str, offline: bool) -> DataUnavailableError:
    cache, how = hub_cache()
    listed = "; ".join(f"{repo} at revision {commit}: {file} ({why})" for (repo, commit, file), why in missing.items())
    commands, folders = [], []
    for repo, commit in dict.fromkeys((r, c) for r, c, _ in missing):
        files = [f for r, c, f in missing if (r, c) == (repo, commit)]
        words = [f"hf download {repo}"] + [f for f in files if not _is_pattern(f)]
        words += [f"--include '{f}'" for f in files if _is_pattern(f)]
        commands.append(" ".join(words + [f"--repo-type dataset --revision {commit}"]))
        folders.append("datasets--" + repo.replace("/", "--"))
    state = " (HF_HUB_OFFLINE is set, so nothing was downloaded)" if offline else " and could not be downloaded"
    return DataUnavailableError(
        f"The data of {where} is not in the Hugging Face hub cache{state}. Missing: {listed}. The hub cache "
        f"is {cache} ({how}). To fill it, run `{'` and `'.join(commands)}` on a machine with internet access, "
        f"then copy that machine's hub cache folder {' and '.join(folders)} into {cache}, or set HF_HOME to a "
        "folder whose hub/ already holds these files; then run again."
    )


# -- reading rows --------------------------------------------------------------------------------

def _fields(ref: str) -> set[str]:
    """The columns a reference reads: ``col``, ``col.field`` or a template ``"x{col}"``."""
    if "{" in ref:
        return {f for _, f, _, _ in string.Formatter().parse(ref) if f}
    return {ref.split(".", 1)[0]}


def _get(row: dict, ref: str) -> Any:
    if "{" in ref:
        return ref.format_map({f: "" if row[f] is None else row[f] for f in _fields(ref)})
    column, _, field = ref.partition(".")
    value = row[column]
    if field:
        return [item[field] for item in value or []]
    return value


def _rows(file: _File, refs: list[str], part: HubPart, name: str, where: str) -> Iterator[tuple[int, dict]]:
    """(row number, row) for the rows that pass the part's ``where`` filter, with the columns
    the references need."""
    columns = set(part.where)
    for ref in refs:
        columns |= _fields(ref)

    def no_column(missing, present, at=""):
        return DataError(
            f"{where}: {file}{at} has no column {', '.join(repr(c) for c in sorted(missing))}, which "
            f"`source.{name}` names; its columns are {', '.join(sorted(present))}. Fix the column names of "
            f"`source.{name}` in the suite."
        )

    if file.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.ParquetFile(file.path)
        present = set(table.schema_arrow.names)
        if columns - present:
            raise no_column(columns - present, present)
        number = 0
        for batch in table.iter_batches(batch_size=8192, columns=sorted(columns)):
            for row in batch.to_pylist():
                number += 1
                if all(str(row[c]) == v for c, v in part.where.items()):
                    yield number, row
        return
    opener = gzip.open if file.name.endswith(".gz") else open
    with opener(file.path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: {file} line {number} is not JSON ({e.msg}). The file is damaged: "
                                "remove it from the hub cache and download it again.") from None
            if columns - set(row):
                raise no_column(columns - set(row), set(row), f" line {number}")
            if all(str(row[c]) == v for c, v in part.where.items()):
                yield number, row


def _id(value: Any, file: _File, number: int, ref: str, where: str) -> str:
    if value is None or value == "":
        raise DataError(f"{where}: {file} row {number} has no id in `{ref}`. The file is not what the suite "
                        "expects: check the column mapping and the revision.")
    return str(value)


def _ids(value: Any, file: _File, number: int, ref: str, where: str) -> list[str]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [_id(v, file, number, ref, where) for v in values]


def _documents(source: HuggingFaceSource, files: list[_File], where: str) -> list[tuple[str, str, str]]:
    part = source.documents
    refs = [part.id, part.text] + ([part.title] if part.title else [])
    out: list[tuple[str, str, str]] = []
    seen: dict[str, tuple[str, str]] = {}
    for file in files:
        for number, row in _rows(file, refs, part, "documents", where):
            doc_id = _id(_get(row, part.id), file, number, part.id, where)
            title = str(_get(row, part.title) or "") if part.title else ""
            text = str(_get(row, part.text) or "")
            # A passage listed once per question (JQaRA) is one document; the same id with other
            # text is kept twice, for the duplicate-id check to report.
            if seen.get(doc_id) == (title, text):
                continue
            seen.setdefault(doc_id, (title, text))
            out.append((doc_id, title, text))
    return out


def _queries(source: HuggingFaceSource, files: list[_File], where: str) -> list[tuple[str, str]]:
    part = source.queries
    out: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for file in files:
        for number, row in _rows(file, [part.id, part.text], part, "queries", where):
            query_id = _id(_get(row, part.id), file, number, part.id, where)
            text = str(_get(row, part.text) or "")
            if seen.get(query_id) == text:  # one row per (question, candidate) in re-ranking files
                continue
            seen.setdefault(query_id, text)
            out.append((query_id, text))
    return out


def _judgments(source: HuggingFaceSource, files: list[_File], where: str) -> list[tuple[str, str, int]]:
    part = source.judgments
    grade_column = part.relevance if isinstance(part.relevance, str) else None
    refs = [part.query_id, part.doc_id] + ([grade_column] if grade_column else [])
    out: list[tuple[str, str, int]] = []
    grades: dict[tuple[str, str], int] = {}
    for file in files:
        for number, row in _rows(file, refs, part, "judgments", where):
            query_id = _id(_get(row, part.query_id), file, number, part.query_id, where)
            if grade_column:
                value = _get(row, grade_column)
                try:
                    grade = int(value)
                except (TypeError, ValueError):
                    raise DataError(f"{where}: {file} row {number}: relevance `{grade_column}` is {value!r}, "
                                    "not an integer grade. Fix `source.judgments.relevance`.") from None
            else:
                grade = int(part.relevance)
            for doc_id in _ids(_get(row, part.doc_id), file, number, part.doc_id, where):
                earlier = grades.get((query_id, doc_id))
                if earlier == grade:
                    continue
                if earlier is not None:
                    raise DataError(f"{where}: {file} judges query {query_id!r} / document {doc_id!r} twice, "
                                    f"with grades {earlier} and {grade}. The judgments contradict each other: "
                                    "check the files and revision of `source.judgments`.")
                grades[(query_id, doc_id)] = grade
                out.append((query_id, doc_id, grade))
    return out


def _candidates(source: HuggingFaceSource, files: list[_File], where: str) -> dict[str, list[str]]:
    part = source.candidates
    out: dict[str, list[str]] = {}
    listed: dict[str, set[str]] = {}
    for file in files:
        for number, row in _rows(file, [part.query_id, *part.doc_ids], part, "candidates", where):
            query_id = _id(_get(row, part.query_id), file, number, part.query_id, where)
            ranked, seen = out.setdefault(query_id, []), listed.setdefault(query_id, set())
            for ref in part.doc_ids:
                for doc_id in _ids(_get(row, ref), file, number, ref, where):
                    if doc_id not in seen:  # a repeated candidate is scored once
                        seen.add(doc_id)
                        ranked.append(doc_id)
    return out

