"""TREC run and qrels files, plain or gzip-compressed.

Run lines:   ``qid Q0 docid rank score tag``
Qrels lines: ``qid iteration docid relevance`` (a tab-separated header line is tolerated, as in
BEIR's ``qrels/*.tsv``).
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import FormatError

# Relevance grades in use go to 4 (TREC's graded scales); far larger ones are usually a score
# column read as the grade.
MAX_GRADE = 100
_GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def _reading(path: Path, what: str) -> Iterator[Iterator[tuple[int, str]]]:
    """(line number, text) of a UTF-8 file, gzip-compressed when named ``.gz``; a file that cannot
    be read this way is a FormatError naming it (and the line, where there is one)."""
    if not path.exists():
        raise FormatError(f"{path}: no such file. Give the path of the {what} file.")
    if path.is_dir():
        raise FormatError(f"{path} is a folder; give the {what} file itself.")
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise FormatError(f"{path}: cannot be read ({e.strerror}). Check its permissions.") from None
    with raw:
        if path.name.endswith(".gz"):
            if raw.read(2) != _GZIP_MAGIC:
                raise FormatError(f"{path}: named .gz but not gzip-compressed. Rename it without .gz, "
                                  f"or compress it with gzip.")
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield _decoded_lines(path, stream, what)
        else:
            yield _decoded_lines(path, raw, what)


# (line number, text) of any UTF-8 text file, named in errors as ``what``: local collections too.
text_lines = _reading


def _decoded_lines(path: Path, stream, what: str) -> Iterator[tuple[int, str]]:
    lineno = 0
    try:
        for lineno, data in enumerate(stream, 1):
            if b"\0" in data:
                raise FormatError(f"{path}:{lineno}: binary data (a NUL byte), not a text {what} file.")
            try:
                yield lineno, data.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {e.start + 1}). "
                    f"A {what} file is UTF-8 text: re-encode it (e.g. `iconv -f latin1 -t utf-8`), or give "
                    "the text file if this one is binary.") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        where = f"after line {lineno}" if lineno else "before its first line"
        raise FormatError(f"{path}: the gzip data is truncated or corrupt {where} ({e}). "
                          "Copy or compress the file again.") from None


def _score(text: str, path: Path, lineno: int) -> float:
    """A run score: a finite number (NaN has no place in a ranking, and would be stored)."""
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{path}:{lineno}: the score {text!r} is not a number.") from None
    if not math.isfinite(value):
        raise FormatError(f"{path}:{lineno}: the score is {text!r}; scores must be finite numbers "
                          "(NaN or infinity make the ranking undefined). Fix the system that wrote the run.")
    return value


def _grade(text: str, path: Path, lineno: int) -> int | None:
    """A relevance grade: a whole number from 0 to MAX_GRADE; None for a header line's label."""
    try:
        value = float(text)
    except ValueError:
        if lineno == 1:  # header line, e.g. "query-id corpus-id score"
            return None
        raise FormatError(f"{path}:{lineno}: the relevance {text!r} is not a number.") from None
    if not (value.is_integer() and 0 <= value <= MAX_GRADE):
        raise FormatError(
            f"{path}:{lineno}: the relevance {text!r} is not a grade: grades are whole numbers from 0 "
            f"(judged non-relevant; write 0 for TREC's negative grades) to {MAX_GRADE}. A fractional or "
            "huge value is usually a score column: give the judgments file, not a run.")
    return int(value)


def _judge(qrels: dict[str, dict[str, int]], lines: dict[tuple[str, str], int], qid: str, docid: str,
           grade: int, path: Path, lineno: int) -> None:
    """Record one judgment; the same pair judged twice must agree (a repeat is kept once)."""
    earlier = qrels.get(qid, {}).get(docid)
    if earlier is not None and earlier != grade:
        raise FormatError(
            f"{path}:{lineno}: query {qid!r}, document {docid!r} is judged {grade} here and {earlier} on "
            f"line {lines[qid, docid]}. The judgments contradict each other: keep one of the lines.")
    lines.setdefault((qid, docid), lineno)
    qrels.setdefault(qid, {})[docid] = grade


def _not_empty(parsed: dict, path: Path, what: str) -> None:
    if not parsed:
        raise FormatError(f"{path}: holds no {what} lines (the file is empty or blank).")


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """Scores per query and document. A document listed twice for one query is an error."""
    scores: dict[str, dict[str, float]] = {}
    for qid, docid, _, score in _run_entries(Path(path), with_rank=False):
        scores.setdefault(qid, {})[docid] = score
    return scores


def read_ranked_run(path: str | Path) -> dict[str, list[tuple[str, int, float]]]:
    """(docid, rank, score) per query, in file order: the rank column too, which must be whole numbers."""
    entries: dict[str, list[tuple[str, int, float]]] = {}
    for qid, docid, rank, score in _run_entries(Path(path), with_rank=True):
        entries.setdefault(qid, []).append((docid, rank, score))
    return entries


def _run_entries(path: Path, with_rank: bool) -> Iterator[tuple[str, str, int | None, float]]:
    seen: dict[str, set[str]] = {}
    with _reading(path, "TREC run") as lines:
        for lineno, line in lines:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise FormatError(
                    f"{path}:{lineno}: a TREC run line has 6 fields (qid Q0 docid rank score tag), "
                    f"this one has {len(parts)}: {line.strip()!r}."
                )
            qid, _, docid, rank, score, _ = parts
            value = _score(score, path, lineno)
            position = None
            if with_rank:
                try:
                    position = int(rank)
                except ValueError:
                    raise FormatError(
                        f"{path}:{lineno}: the rank {rank!r} is not a whole number; ordering a run by its "
                        "rank column needs one on every line (or order it by score, as trec_eval does)."
                    ) from None
            docs = seen.setdefault(qid, set())
            if docid in docs:
                raise FormatError(
                    f"{path}:{lineno}: document {docid!r} is listed twice for query {qid!r}; "
                    "a run ranks each document at most once per query."
                )
            docs.add(docid)
            yield qid, docid, position, value
    _not_empty(seen, path, "run")


def write_run(path: str | Path, rankings: Iterable[tuple[str, Iterable[tuple[str, float]]]], tag: str) -> None:
    """Write ranked (docid, score) lists per query; ranks are 1-based in the given order, and scores
    exact (``exact_scores``)."""
    path = Path(path)
    tag = tag.replace(" ", "_") or "run"
    buffer = io.StringIO()
    for qid, ranked in rankings:
        ranked = list(ranked)
        for rank, ((docid, _), score) in enumerate(zip(ranked, exact_scores([s for _, s in ranked])), 1):
            buffer.write(f"{qid} Q0 {docid} {rank} {score} {tag}\n")
    if str(path).endswith(".gz"):
        # No name and mtime=0 in the header: identical runs give identical bytes.
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(buffer.getvalue().encode("utf-8"))
    else:
        path.write_text(buffer.getvalue(), encoding="utf-8")


def exact_scores(scores: list[float]) -> list[str]:
    """The shortest decimals that read back as the same float32 (or float64) values, so a written run
    keeps its order and its ties exactly. A query's scores that are all float32 values (a model's) are written at
    float32 precision; otherwise (BM25 in float64, say) at float64 precision, since float32 digits
    could merge two float64 scores into a tie."""
    import numpy as np  # here: the CLI imports this module and starts fast

    values = np.asarray(scores, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range: not a float32 value, written as float64
        single = values.astype(np.float32)
    exact = single if np.array_equal(single.astype(np.float64), values, equal_nan=True) else values
    return exact.astype(str).tolist()


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Graded judgments per query. Accepts 4-column TREC qrels and 3-column BEIR TSV qrels."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    first_lines: dict[tuple[str, str], int] = {}
    with _reading(path, "qrels") as lines:
        for lineno, line in lines:
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 4:
                qid, _, docid, grade = parts
            elif len(parts) == 3:
                qid, docid, grade = parts
            else:
                raise FormatError(
                    f"{path}:{lineno}: a qrels line has 4 fields (qid iteration docid relevance) "
                    f"or 3 (qid docid relevance), this one has {len(parts)}: {line.strip()!r}."
                )
            value = _grade(grade, path, lineno)
            if value is not None:
                _judge(qrels, first_lines, qid, docid, value, path, lineno)
    _not_empty(qrels, path, "judgment")
    return qrels


def iter_qrels_lines(qrels: dict[str, dict[str, int]]) -> Iterator[str]:
    for qid, judged in qrels.items():
        for docid, grade in judged.items():
            yield f"{qid} 0 {docid} {grade}\n"
