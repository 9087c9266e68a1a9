"""Synthetic result folders written through the real ResultStore: a record whose metrics are the
means of the per-query scores stored beside it, with a ranking file, as `harness run` writes them."""

from __future__ import annotations

from pathlib import Path

from harness.metrics import Evaluation
from harness.results import ResultStore
from harness.runs import Run

from tests.helpers import make_card, make_record


def store_result(root: Path, name: str, dataset: str, scores: list[float], *, suite: str = "beir",
                 card=None, cost: dict | None = None, params: dict | None = None, **card_changes) -> Path:
    """One result folder of ``name`` on ``suite/dataset`` whose nDCG@10 per query is ``scores``
    (queries q0, q1, ...); recall@100 is nDCG + 0.2, capped at 1."""
    card = card or make_card(dataset, suite=suite, **card_changes)
    ndcg = {f"q{i}": float(s) for i, s in enumerate(scores)}
    recall = {q: min(1.0, s + 0.2) for q, s in ndcg.items()}
    means = {"ndcg@10": sum(ndcg.values()) / len(ndcg), "recall@100": sum(recall.values()) / len(recall)}
    record = make_record(name, dataset, means["ndcg@10"], card=card, params=params).model_copy(
        update={"metrics": means, "n_queries": len(ndcg), "cost": cost or {}})
    evaluation = Evaluation(["ndcg@10", "recall@100"], {"ndcg@10": ndcg, "recall@100": recall}, means)
    run = Run({q: {"d1": 1.0, "d2": 0.5} for q in ndcg}, name=name)
    return ResultStore(root).write(record, evaluation, run)
