"""Sharded and one-shard runs are the same runs: SciFact with the MiniLM token model at d128 and
the dense baseline, one shard against several, through the pipeline."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness import pipeline
from harness.index import cache, shards
from harness.results import load_record
from harness.runs import Run
from harness.suite import load_suite

from tests.conftest import REPO, run_cli

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
    sweep: {shard_tokens: [16777216, 6000]}
"""


def _runs(tmp_path, monkeypatch, suite: str) -> tuple[dict, dict, dict]:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    (tmp_path / "suite.yaml").write_text(suite)
    units = pipeline.plan(load_suite(tmp_path / "suite.yaml"), ["scifact"], sample=(50, 200), latency_queries=0)
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
    # 200 documents, 6000 // 128 = 46 a shard
    assert costs["16777216"]["n_shards"] == 1 and costs["6000"]["n_shards"] == 5
    assert shards.STATS["encoded"] == costs["6000"]["n_shards"]
    _assert_same(runs["16777216"], runs["6000"])
    assert metrics["16777216"] == metrics["6000"]


DENSE_SUITE = SUITE.replace("""  minilm:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 128}
    sweep: {shard_tokens: [16777216, 6000]}""", """  dense:
    class: dense
    params: {model: sentence-transformers/all-MiniLM-L6-v2}
    sweep: {shard_tokens: [16777216, 45]}""")


def test_the_dense_baseline_in_several_shards_ranks_and_scores_as_in_one(tmp_path, monkeypatch):
    shards.STATS.clear()
    runs, metrics, costs = _runs(tmp_path, monkeypatch, DENSE_SUITE)
    assert costs["16777216"]["n_shards"] == 1 and costs["45"]["n_shards"] == 5  # 200 documents, 45 a shard
    assert shards.STATS["encoded"] == 5
    _assert_same(runs["16777216"], runs["45"])
    assert metrics["16777216"] == metrics["45"]


KILL_SUITE = """
name: beir
defaults: {language: en, split: test, max_length: {query: 32, document: 64}}
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  li:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 64, shard_tokens: 2500}
"""
RUN_ARGS = ("-d", "scifact", "--max-queries", "10", "--max-documents", "200", "--latency-queries", "0")


def _finished_shards(home: Path) -> set[Path]:
    return {p.parent for p in (home / "tokens").glob("*/*/manifest.json")
            if not p.parent.name.startswith(".") and (p.parent / "vectors.bin").exists()}


def test_a_run_killed_while_encoding_encodes_only_the_missing_shards_when_run_again(offline, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(KILL_SUITE)
    home = tmp_path / "home"
    env = {**os.environ, "HARNESS_HOME": str(home), "COLUMNS": "200"}
    command = [sys.executable, "-m", "harness", "run", str(suite), *RUN_ARGS]
    process = subprocess.Popen([*command, "--results", str(tmp_path / "killed")], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not _finished_shards(home) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(_finished_shards(home))
    assert done_before >= 1
    again = run_cli("run", str(suite), *RUN_ARGS, "--results", str(tmp_path / "killed"), env={"HARNESS_HOME": str(home)})
    assert again.returncode == 0, again.stderr
    counts = re.search(r"document shards: (\d+) encoded, (\d+) reused", again.stdout)
    assert counts, again.stdout
    encoded, reused = int(counts[1]), int(counts[2])
    assert reused == done_before and encoded >= 1 and encoded + reused >= 4
    # The same run as one that was never interrupted, in a cache of its own.
    whole = run_cli("run", str(suite), *RUN_ARGS, "--results", str(tmp_path / "whole"),
                    env={"HARNESS_HOME": str(tmp_path / "other")})
    assert f"document shards: {encoded + reused} encoded, 0 reused" in whole.stdout
    runs = [Run.from_trec(next((tmp_path / name).rglob("run.trec.gz")), ties="rank") for name in ("killed", "whole")]
    _assert_same(*runs)


def test_the_command_lines_shard_size_cuts_the_store_without_changing_the_key(tmp_path, offline):
    from harness import retrievers
    from harness.suite_schema import RetrieverSpec

    (tmp_path / "suite.yaml").write_text(SUITE.replace("    sweep: {shard_tokens: [16777216, 6000]}\n", ""))
    suite = load_suite(tmp_path / "suite.yaml")
    (plain,) = pipeline.plan(suite, ["scifact"], ["minilm"])
    (cut,) = pipeline.plan(suite, ["scifact"], ["minilm"], shard_tokens=5000)
    assert (plain.shard_tokens, cut.shard_tokens) == (None, 5000)
    spec = suite.retriever("minilm")
    built = {u.shard_tokens: retrievers.build(spec.class_, pipeline._run_params(spec, u)) for u in (plain, cut)}
    assert (built[None].shard_tokens, built[5000].shard_tokens) == (shards.DEFAULT_SHARD_TOKENS, 5000)
    assert built[None].settings() == built[5000].settings()  # the card, so the key, is the same
    # A retriever that does not shard is not given the option.
    assert "shard_tokens" not in retrievers.with_run_options("bm25", {}, shard_tokens=5000)
    assert isinstance(spec, RetrieverSpec)


def test_a_shard_size_that_is_not_a_whole_number_of_vectors_is_refused(offline):
    import pytest

    from harness.errors import ParameterError
    from harness.retrievers.late_interaction import LateInteractionRetriever

    for bad in (0, -3, True, 2.5):
        with pytest.raises(ParameterError, match=rf"shard_tokens={bad!r} is not a number of vectors; give a whole "
                                                 r"number of at least 1"):
            LateInteractionRetriever("sentence-transformers/all-MiniLM-L6-v2", format="plain", shard_tokens=bad)
