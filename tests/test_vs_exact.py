"""``record.vs_exact``: each loss field against an independent computation from the two stored
runs (the approximate result's and the exact one's), and the exact run reused, not searched again."""

import numpy as np
import pytest

from harness import pipeline, vs_exact
from harness.index import approximate, cache
from harness.metrics import evaluate
from harness.results import load_record
from harness.runs import Run
from harness.significance import paired_bootstrap, randomization_test
from harness.suite import load_suite
from tests.helpers import scifact_suite


def rbo_by_definition(a, b, p=0.99):
    """RBO_ext (Webber, Moffat and Zobel, 2010, eq. 32) from set overlaps at each depth: S the shorter
    ranking (length s), L the longer (length l), X_d = |S[:d] & L[:d]|."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, l = len(short), len(long_)
    x = {d: len(set(short[:d]) & set(long_[:d])) for d in range(1, l + 1)}
    total = sum(x[d] / d * p**d for d in range(1, l + 1))
    total += sum(x[s] * (d - s) / (s * d) * p**d for d in range(s + 1, l + 1))
    return (1 - p) / p * total + ((x[l] - x[s]) / l + x[s] / s) * p**l


def test_rbo_and_recall_of_exact_on_hand_made_rankings():
    a = [f"d{i}" for i in range(20)]
    rng = np.random.default_rng(0)
    b = list(rng.permutation(a[:15])) + ["x1", "x2", "x3", "x4", "x5"]
    assert vs_exact.rbo(a, a) == pytest.approx(1.0)
    assert vs_exact.rbo(a, [f"y{i}" for i in range(20)]) == 0.0
    assert vs_exact.rbo(a, b) == pytest.approx(rbo_by_definition(a, b), abs=1e-12)
    assert vs_exact.rbo(a, b, p=0.9) == pytest.approx(rbo_by_definition(a, b, 0.9), abs=1e-12)
    assert vs_exact.recall_of_exact(a, b, 10) == len(set(a[:10]) & set(b[:10])) / 10
    # a shorter ranking is extrapolated from its own agreement: a prefix agrees as far as it goes
    assert vs_exact.rbo(a[:5], a) == pytest.approx(1.0)
    assert 0 < vs_exact.rbo(b[:5], a) < 1 and vs_exact.rbo(b[:5], a) == vs_exact.rbo(a, b[:5])


SUITE = scifact_suite("approx-check", "PLAID against exact search on a SciFact sample", """\
  minilm:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 128, storage: residual-2}
    sweep: {index: [exact, plaid]}
""")


def test_loss_fields_equal_an_independent_computation_from_the_two_stored_runs(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()
    approximate._BUILT.clear()
    (tmp_path / "suite.yaml").write_text(SUITE)
    suite = load_suite(tmp_path / "suite.yaml")
    units = pipeline.plan(suite, ["scifact"], sample=(30, 150), latency_queries=4)
    folders = {u.retriever.split("=")[1]: pipeline.execute(u, tmp_path / "results").folder for u in units}
    exact_record, record = load_record(folders["exact"]), load_record(folders["plaid"])
    assert exact_record.vs_exact is None
    loss = record.vs_exact
    assert loss["exact_source"] == "stored result"  # the exact unit ran first: not searched again
    assert record.protocol["system"]["index"] == {"kind": "plaid", "ncells": 2, "centroid_score_threshold": 0.45,
                                                  "ndocs": 1024}  # colbert-ai's defaults at depth 100

    exact, approx = Run.from_trec(folders["exact"] / "run.trec.gz"), Run.from_trec(folders["plaid"] / "run.trec.gz")
    from harness.data.load import load_dataset

    dataset = load_dataset(units[0].spec(suite), suite.name)
    e = evaluate(dataset.qrels, exact, ["ndcg@10"]).per_query["ndcg@10"]
    a = evaluate(dataset.qrels, approx, ["ndcg@10"]).per_query["ndcg@10"]
    queries = sorted(e)
    before, after = [e[q] for q in queries], [a[q] for q in queries]
    assert loss["delta"] == pytest.approx(np.mean(after) - np.mean(before), abs=1e-12)
    assert loss["exact"] == pytest.approx(exact_record.metrics["ndcg@10"], abs=1e-12)
    assert loss["approximate"] == pytest.approx(record.metrics["ndcg@10"], abs=1e-12)
    boot = paired_bootstrap(before, after)
    assert loss["ci95"] == pytest.approx([boot.low, boot.high], abs=1e-12)
    assert loss["p_value"] == pytest.approx(randomization_test(before, after), abs=1e-12)
    lists = {q: ([d for d, _ in exact[q]], [d for d, _ in approx[q]]) for q in exact}
    for k in (10, 100):
        expected = np.mean([len(set(x[:k]) & set(y[:k])) / len(x[:k]) for x, y in lists.values()])
        assert loss[f"recall_of_exact@{k}"] == pytest.approx(expected, abs=1e-12)
    assert any(len(y) < len(x) for x, y in lists.values())  # PLAID found fewer than 100 for some queries
    assert loss["rbo"] == pytest.approx(np.mean([rbo_by_definition(x, y) for x, y in lists.values()]), abs=1e-9)
    # every fully scored document is ranked, up to the depth: a ranking is as long as min(scored, 100)
    scored, lengths = loss["documents_scored_per_query"], [len(y) for _, y in lists.values()]
    assert max(lengths) <= scored["max"] <= 150 and scored["mean"] >= np.mean(lengths)
    assert loss["latency_ms"] == {n: record.cost["search_latency_ms"][n] for n in ("p50", "p95")}
    assert loss["exact_latency_ms"] == {n: exact_record.cost["search_latency_ms"][n] for n in ("p50", "p95")}
    assert loss["index_bytes"] == record.cost["approximate_index_bytes"] > 0 and loss["index_build_s"] > 0

    # Without a stored exact result the exact run is searched once, then found in the cache.
    plaid_unit = [u for u in units if u.retriever.endswith("plaid")][0]
    sources = [load_record(pipeline.execute(plaid_unit, tmp_path / f"other-{i}").folder).vs_exact["exact_source"]
               for i in range(2)]
    assert sources == ["searched", "cached run"]
