"""TREC run and qrels files, plain or gzip-compressed.

Run lines:   ``qid Q0 docid rank score tag``
Qrels lines: ``qid iteration docid relevance`` (a tab-separated header line is tolerated, as in
BEIR's ``qrels/*.tsv``).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness.errors import FormatError


def _open_text(path: Path, mode: str = "rt"):
    if str(path).endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


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
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise FormatError(
                    f"{path}:{lineno}: a TREC run line has 6 fields (qid Q0 docid rank score tag), "
                    f"this one has {len(parts)}: {line.strip()!r}."
                )
            qid, _, docid, rank, score, _ = parts
            try:
                value = float(score)
            except ValueError:
                raise FormatError(f"{path}:{lineno}: the score {score!r} is not a number.") from None
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
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
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
            try:
                value = int(float(grade))
            except ValueError:
                if lineno == 1:  # header line, e.g. "query-id corpus-id score"
                    continue
                raise FormatError(f"{path}:{lineno}: the relevance {grade!r} is not a number.") from None
            qrels.setdefault(qid, {})[docid] = value
    return qrels


def iter_qrels_lines(qrels: dict[str, dict[str, int]]) -> Iterator[str]:
    for qid, judged in qrels.items():
        for docid, grade in judged.items():
            yield f"{qid} 0 {docid} {grade}\n"
