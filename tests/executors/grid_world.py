"""A small grid for the executor tests: two BM25 configurations (and a retriever whose scores come
out NaN, for failures) on a SciFact sample, run through the CLI in fresh processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from harness.results import ResultStore
from harness.runs import Run

SUITE = """name: beir
defaults:
  language: en
  split: test
  metrics: [ndcg@10, recall@100]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  bm25: {class: bm25, params: {k1: 0.9, b: 0.4}}
  bm25-k12: {class: bm25, params: {k1: 1.2, b: 0.75}}
  nan: {class: "tests.faults.nan_retriever:NaNScores"}
"""
SAMPLE = ("--max-queries", "20", "--max-documents", "300", "--latency-queries", "0")


def write_suite(folder: Path) -> Path:
    path = folder / "suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def stored(results: Path) -> dict[str, tuple[dict, Run]]:
    """label -> (metrics, run) of every result under ``results``."""
    return {record.label: (record.metrics, Run.from_trec(folder / "run.trec.gz"))
            for folder, record in ResultStore(results).records()}


def assert_same_results(ours: Path, theirs: Path) -> None:
    """The same documents at the same ranks, scores within 1e-6, and the same metrics."""
    a, b = stored(ours), stored(theirs)
    assert sorted(a) == sorted(b) and a
    for label in a:
        (metrics_a, run_a), (metrics_b, run_b) = a[label], b[label]
        assert metrics_a == metrics_b, label
        assert_same_runs(run_a, run_b, label)


def assert_same_runs(run_a: Run, run_b: Run, label: str = "") -> None:
    """The same documents at the same ranks for every query, scores within 1e-6."""
    assert sorted(run_a.keys()) == sorted(run_b.keys())
    for query in run_a.keys():
        ranked_a, ranked_b = list(run_a[query]), list(run_b[query])
        assert [d for d, _ in ranked_a] == [d for d, _ in ranked_b], (label, query)
        assert all(abs(x - y) <= 1e-6 for (_, x), (_, y) in zip(ranked_a, ranked_b))


def leftovers(results: Path) -> list[Path]:
    """Temporary folders a unit left behind (a later run never reads them, but a clean end leaves none)."""
    return sorted(p for p in results.rglob(".tmp-*"))


def processes(matching: Callable[[int], bool]) -> list[int]:
    """Processes of this machine for which ``matching(pid)`` holds; one that ends (or cannot be
    read) while it is looked at does not count."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if matching(int(name)):
                    found.append(int(name))
            except OSError:
                continue
    return found
