"""A harness retriever run by MTEB's own evaluator (`mteb.evaluate` through MTEB's search protocol),
on the data the harness loaded: MTEB's nDCG@10 is the harness's."""

from __future__ import annotations

import pytest

from harness.data.load import load_dataset
from harness.pipeline import Unit, execute
from harness.retrievers import build
from harness.suite import load_suite

from tests.conftest import SCIFACT_SUITE

mteb = pytest.importorskip("mteb")


def test_mteb_evaluator_agrees_with_the_harness_on_scifact(offline, tmp_path):
    from mteb.models.models_protocols import SearchProtocol

    from harness.mteb_search import HarnessSearchModel, task_with_data

    suite = load_suite(SCIFACT_SUITE)
    ours = execute(Unit(str(SCIFACT_SUITE), "scifact", "bm25", latency_queries=0), tmp_path / "results")
    bm25 = build("bm25", suite.retriever("bm25").params)
    bm25.set_language("en")
    model = HarnessSearchModel(bm25, "harness/bm25")
    assert isinstance(model, SearchProtocol)
    task = task_with_data(mteb.get_task("SciFact"), load_dataset(suite.dataset("scifact"), suite.name), "test")
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False)
    [scores] = result.task_results[0].scores["test"]
    assert scores["main_score"] == scores["ndcg_at_10"]
    assert scores["ndcg_at_10"] == pytest.approx(ours.metrics["ndcg@10"], abs=1e-4)
    assert scores["recall_at_100"] == pytest.approx(ours.metrics["recall@100"], abs=1e-4)
