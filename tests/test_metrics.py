"""Metrics agree with trec_eval (through pytrec_eval) on the same run, ties included."""

import random

import pytest
import pytrec_eval

from harness.data.model import Qrels
from harness.errors import UnknownNameError
from harness.metrics import evaluate, parse_metric
from harness.runs import Run

METRICS = ["ndcg@10", "recall@100", "recall@1000", "mrr@10", "map@100", "precision@5", "precision@10",
           "hit_rate@1", "hit_rate@10"]


def random_case(seed: int, n_queries: int = 60, n_docs: int = 400):
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(range(n_docs), rng.randint(1, 12))
        qrels[qid] = {f"d{d}": rng.choice([0, 1, 1, 2, 3]) for d in judged}
        retrieved = rng.sample(range(n_docs), rng.randint(50, 300))
        # Coarse scores: many ties, so tie-breaking must match trec_eval's.
        run[qid] = {f"d{d}": float(rng.randint(0, 40)) / 4 for d in retrieved}
    return qrels, run


def trec_eval(qrels, run) -> dict[str, dict[str, float]]:
    # P_k divides by k however many documents were retrieved; success_k is 1 when a relevant
    # document is in the top k: ranx's precision@k and hit_rate@k.
    measures = {"ndcg_cut.10", "recall.100,1000", "map_cut.100", "P.5,10", "success.1,10"}
    scores = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # trec_eval's recip_rank has no cut-off: give it each ranking's top 10 (in trec_eval's order).
    top10 = {q: dict(Run(run)[q][:10]) for q in run}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        "ndcg@10": {q: s["ndcg_cut_10"] for q, s in scores.items()},
        "recall@100": {q: s["recall_100"] for q, s in scores.items()},
        "recall@1000": {q: s["recall_1000"] for q, s in scores.items()},
        "map@100": {q: s["map_cut_100"] for q, s in scores.items()},
        "mrr@10": {q: s["recip_rank"] for q, s in rr.items()},
        "precision@5": {q: s["P_5"] for q, s in scores.items()},
        "precision@10": {q: s["P_10"] for q, s in scores.items()},
        "hit_rate@1": {q: s["success_1"] for q, s in scores.items()},
        "hit_rate@10": {q: s["success_10"] for q, s in scores.items()},
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pytrec_eval_per_query_to_1e6(seed):
    qrels, run = random_case(seed)
    ours = evaluate(Qrels(qrels), Run(run), METRICS)
    reference = trec_eval(qrels, run)
    for metric in METRICS:
        assert set(ours.per_query[metric]) == set(reference[metric])
        for qid, value in reference[metric].items():
            assert ours.per_query[metric][qid] == pytest.approx(value, abs=1e-6), (metric, qid)
        mean = sum(reference[metric].values()) / len(reference[metric])
        assert ours.mean[metric] == pytest.approx(mean, abs=1e-6)


def test_precision_and_hit_rate_count_short_rankings_against_k():
    # Three documents retrieved, one relevant at rank 3: P@5 is 1/5 (not 1/3), hit@1 is 0, hit@5 is 1.
    qrels, run = {"q": {"c": 1, "z": 2}}, {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
    ours = evaluate(Qrels(qrels), Run(run), ["precision@5", "hit_rate@1", "hit_rate@5"])
    assert ours.mean == {"precision@5": pytest.approx(0.2), "hit_rate@1": 0.0, "hit_rate@5": 1.0}
    assert trec_eval(qrels, run)["precision@5"]["q"] == pytest.approx(0.2)


def test_ties_are_broken_by_doc_id_descending_like_trec_eval():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}  # trec_eval ranks b before a
    assert Run(run)["q"] == [("b", 1.0), ("a", 1.0)]
    ours = evaluate(Qrels(qrels), Run(run), ["mrr@10"])
    assert ours.mean["mrr@10"] == pytest.approx(0.5)
    assert pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"] == pytest.approx(0.5)


def test_unretrieved_and_unanswerable_queries_score_zero_and_count():
    qrels = Qrels({"found": {"d1": 1}, "missed": {"d2": 1}, "no_relevant": {"d3": 0}})
    run = Run({"found": {"d1": 1.0}, "no_relevant": {"d3": 1.0}, "unjudged": {"d1": 1.0}})
    result = evaluate(qrels, run, ["ndcg@10", "recall@100"])
    assert result.per_query["ndcg@10"] == {"found": 1.0, "missed": 0.0, "no_relevant": 0.0}
    assert result.mean["ndcg@10"] == pytest.approx(1 / 3)
    assert result.query_ids == ["found", "missed", "no_relevant"]


def test_metric_names_are_validated():
    assert parse_metric("NDCG@10") == ("ndcg", 10)
    assert parse_metric("map") == ("map", None)
    for bad in ["ndcg", "ndcg@0", "bleu@4", "recall@x"]:
        with pytest.raises(UnknownNameError, match="Known metrics: ndcg@k, recall@k"):
            parse_metric(bad)
