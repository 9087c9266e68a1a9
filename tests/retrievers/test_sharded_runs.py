"""Sharded and one-shard runs are the same runs: SciFact with the MiniLM token model at d128 and
the dense baseline, one shard against several, through the pipeline."""

import numpy as np

from harness import pipeline
from harness.index import cache, shards
from harness.results import load_record
from harness.runs import Run
from harness.suite import load_suite

SUITE = """
name: shard-check
defaults:
  language: en
  split: test
  text: {document_fields: [title, text], separator: " "}
  max_length: {query: 32, document: 128}
  depth: 100
  metrics: [ndcg@10, recall@100]
  main_metric: ndcg@10
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  minilm:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 128}
    sweep: {shard_tokens: [16777216, 9000]}
"""


def _runs(tmp_path, monkeypatch, suite: str) -> tuple[dict, dict, dict]:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    (tmp_path / "suite.yaml").write_text(suite)
    units = pipeline.plan(load_suite(tmp_path / "suite.yaml"), ["scifact"], sample=(50, 400), latency_queries=0)
    runs, metrics, costs = {}, {}, {}
    for unit in units:
        outcome = pipeline.execute(unit, tmp_path / "results")
        point = unit.retriever.split("=")[1].rstrip("]")
        runs[point] = Run.from_trec(outcome.folder / "run.trec.gz", ties="rank")
        metrics[point] = outcome.metrics
        costs[point] = load_record(outcome.folder).cost
    return runs, metrics, costs


def _assert_same(one: Run, many: Run) -> None:
    assert list(one) == list(many)
    for q in one:
        assert [d for d, _ in one[q]] == [d for d, _ in many[q]], q
        np.testing.assert_allclose([s for _, s in one[q]], [s for _, s in many[q]], rtol=0, atol=1e-6)


def test_late_interaction_in_several_shards_ranks_and_scores_as_in_one(tmp_path, monkeypatch):
    cache.STATS.clear()
    shards.STATS.clear()
    runs, metrics, costs = _runs(tmp_path, monkeypatch, SUITE)
    assert costs["16777216"]["n_shards"] == 1 and costs["9000"]["n_shards"] >= 4
    assert shards.STATS["encoded"] == costs["9000"]["n_shards"]
    _assert_same(runs["16777216"], runs["9000"])
    assert metrics["16777216"] == metrics["9000"]
