"""Tied scores: their counts, and the main metric's bounds over their orders."""

import random

import pytest

from harness.data.model import Qrels
from harness.metrics import evaluate
from harness.runs import Run
from harness.ties import tie_groups

from tests.helpers import ndcg

# q1: three documents tie at 0.5 (grades 2, 0, 1), q2: two tie at 0.75 (grades 1, 0), q3: no tie.
QRELS = Qrels({"q1": {"d1": 2, "d3": 1}, "q2": {"d5": 1}, "q3": {"d7": 1}})
RUN = Run({"q1": {"d1": 0.5, "d2": 0.5, "d3": 0.5, "d4": 0.25}, "q2": {"d5": 0.75, "d6": 0.75},
           "q3": {"d7": 0.9, "d8": 0.1}})


def test_counts_tied_pairs_groups_and_queries():
    groups = tie_groups(RUN, QRELS, ["q1", "q2", "q3"])
    assert (groups.pairs, groups.tied_pairs, groups.tied_groups, groups.mixed_groups, groups.queries_with_ties) == \
        (8, 5, 2, 2, 2)
    assert groups.best == {"q1": ["d1", "d3", "d2", "d4"], "q2": ["d5", "d6"]}
    assert groups.worst == {"q1": ["d2", "d3", "d1", "d4"], "q2": ["d6", "d5"]}


def test_bounds_of_the_main_metric_are_exact_and_around_the_value():
    result = evaluate(QRELS, RUN, ["ndcg@10", "mrr@10"])
    # trec_eval's order: q1 d3 d2 d1 d4, q2 d6 d5.
    trec = (ndcg([1, 0, 2, 0], [2, 1]) + ndcg([0, 1], [1]) + 1.0) / 3
    worst = (ndcg([0, 1, 2, 0], [2, 1]) + ndcg([0, 1], [1]) + 1.0) / 3
    assert result.mean["ndcg@10"] == pytest.approx(trec, abs=1e-12)
    ties = result.ties
    assert ties.metric == "ndcg@10"
    assert ties.optimistic == pytest.approx(1.0, abs=1e-12)
    assert ties.pessimistic == pytest.approx(worst, abs=1e-12)
    assert ties.optimistic > result.mean["ndcg@10"] > ties.pessimistic
    assert evaluate(QRELS, RUN, ["ndcg@10", "mrr@10"], main_metric="mrr@10").ties.pessimistic == \
        pytest.approx((1 / 2 + 1 / 2 + 1) / 3, abs=1e-12)


def test_ties_below_the_cut_off_or_among_equal_grades_move_nothing():
    qrels = Qrels({"q": {"a": 1, "b": 1}})
    # a and b tie with equal grades; x, y, z tie below rank 1 and hold no relevant document.
    run = Run({"q": {"a": 3.0, "b": 3.0, "x": 1.0, "y": 1.0, "z": 1.0}})
    result = evaluate(qrels, run, ["ndcg@10"])
    assert (result.ties.tied_pairs, result.ties.tied_groups, result.ties.mixed_groups) == (5, 2, 0)
    assert result.ties.optimistic == result.ties.pessimistic == result.mean["ndcg@10"] == 1.0
    # A mixed group below the cut-off: counted, but ndcg@1 cannot move.
    run = Run({"q": {"a": 3.0, "x": 1.0, "b": 1.0}})
    result = evaluate(qrels, run, ["ndcg@1"])
    assert result.ties.mixed_groups == 1
    assert result.ties.optimistic == result.ties.pessimistic == result.mean["ndcg@1"] == 1.0
    assert tie_groups(run, qrels, ["q"], cutoff=1).best == {}


def brute_force_bounds(qrels, run, k):
    """Per query in plain Python: sort each tied group by grade, then nDCG@k."""
    values = {"best": [], "worst": []}
    for q in sorted(qrels):
        ranking = run.get(q, [])
        grades = [qrels[q].get(d, 0) for d, _ in ranking]
        ideal = [g for g in qrels[q].values() if g > 0]
        for side, sign in (("best", -1), ("worst", 1)):
            # Group number: how many score changes precede the position.
            group = [sum(ranking[j][1] != ranking[j - 1][1] for j in range(1, i + 1)) for i in range(len(ranking))]
            order = sorted(range(len(ranking)), key=lambda i: (group[i], sign * grades[i]))
            values[side].append(ndcg([grades[i] for i in order], ideal, k) if ideal else 0.0)
    return {side: sum(v) / len(v) for side, v in values.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_bounds_match_a_per_query_computation(seed):
    rng = random.Random(seed)
    qrels, scores = {}, {}
    for q in range(40):
        docs = rng.sample(range(200), 60)
        qrels[f"q{q}"] = {f"d{d}": rng.choice([0, 1, 2, 3]) for d in rng.sample(docs, 8)}
        scores[f"q{q}"] = {f"d{d}": float(rng.randint(0, 12)) for d in docs}  # coarse: many ties
    qrels["unretrieved"] = {"d1": 1}
    run = Run(scores)
    result = evaluate(Qrels(qrels), run, ["ndcg@10"])
    expected = brute_force_bounds(qrels, run, 10)
    assert result.ties.optimistic == pytest.approx(expected["best"], abs=1e-12)
    assert result.ties.pessimistic == pytest.approx(expected["worst"], abs=1e-12)
    assert result.ties.optimistic > result.mean["ndcg@10"] > result.ties.pessimistic
    assert result.ties.pairs == 40 * 60


def test_a_run_without_ties_has_bounds_equal_to_its_value():
    qrels = Qrels({"q": {"a": 1}, "r": {"c": 2}})
    result = evaluate(qrels, Run({"q": {"a": 1.0, "b": 2.0}, "r": {"c": 0.5}}), ["ndcg@10"])
    assert (result.ties.pairs, result.ties.tied_pairs, result.ties.queries_with_ties) == (3, 0, 0)
    assert result.ties.optimistic == result.ties.pessimistic == result.mean["ndcg@10"]
