"""Comparing stored results: pairing by (suite, dataset), protocols, per-query analysis, the CLI."""

import json

import numpy as np
import pytest

from harness import integrity
from harness.compare import compare_results, load_results, match_results
from harness.errors import HarnessError, ProtocolMismatchError
from harness.metrics import Evaluation
from harness.results import ResultStore
from harness.runs import Run

from tests.conftest import run_cli
from tests.helpers import make_card, make_record

QUERIES = [f"q{i:03d}" for i in range(200)]


def baseline_scores(seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return dict(zip(QUERIES, rng.uniform(0.1, 0.9, size=len(QUERIES)).round(6).tolist()))


def write_result(root, name: str, scores: dict[str, float], dataset: str = "scifact", card=None, params=None):
    """A result folder as `harness run` writes it, through the real ResultStore, with the given
    per-query nDCG@10 (recall@100 is derived, so the frame has two metrics)."""
    per_query = {"ndcg@10": dict(scores), "recall@100": {q: min(1.0, v + 0.1) for q, v in scores.items()}}
    mean = {m: sum(v.values()) / len(v) for m, v in per_query.items()}
    evaluation = Evaluation(metrics=list(per_query), per_query=per_query, mean=mean)
    record = make_record(name, dataset, mean["ndcg@10"], card=card, params=params)
    record = record.model_copy(update={"metrics": mean, "n_queries": len(scores)})
    return ResultStore(root).write(record, evaluation, Run({q: {"d1": 1.0} for q in scores}, name=name))


def test_identical_results_compare_as_ties(tmp_path):
    folder = write_result(tmp_path / "a", "bm25", baseline_scores())
    (comp,), notes = compare_results(folder, folder)
    assert notes == []
    assert (comp.label, comp.metric, comp.n_queries) == ("beir/scifact", "ndcg@10", 200)
    assert comp.delta == 0.0 and (comp.bootstrap.low, comp.bootstrap.high) == (0.0, 0.0)
    assert comp.p_value == 1.0
    assert (comp.wins, comp.losses, comp.ties) == (0, 0, 200)
    assert comp.changed == []
    assert comp.baseline_mean == pytest.approx(np.mean(list(baseline_scores().values())))


def test_per_query_wins_losses_and_the_queries_that_changed_most(tmp_path):
    base = baseline_scores()
    cand = dict(base, q007=base["q007"] + 0.05, q010=base["q010"] - 0.3, q020=base["q020"] + 0.1)
    a = write_result(tmp_path / "a", "bm25", base)
    b = write_result(tmp_path / "b", "bm25-new", cand)
    (comp,), _ = compare_results(a, b, top=2)
    assert (comp.wins, comp.losses, comp.ties) == (2, 1, 197)
    assert comp.delta == pytest.approx((0.05 - 0.3 + 0.1) / 200)
    assert [(q.query_id, q.baseline, q.candidate) for q in comp.changed] == [
        ("q010", base["q010"], cand["q010"]), ("q020", base["q020"], cand["q020"])]
    assert comp.changed[0].delta == pytest.approx(-0.3)
    assert comp.bootstrap.low < comp.delta < comp.bootstrap.high
    # Three changed queries out of 200 with mixed signs: far from significant.
    assert comp.p_value > 0.3
    (recall,), _ = compare_results(a, b, metric="recall@100", top=0)
    assert recall.metric == "recall@100" and recall.changed == []
    # recall = min(1, ndcg + 0.1): q020's baseline may sit at the cap, the others move with nDCG.
    assert recall.losses == 1


def test_results_roots_pair_by_dataset_and_note_the_rest(tmp_path):
    write_result(tmp_path / "a", "bm25", baseline_scores(), dataset="scifact")
    write_result(tmp_path / "a", "bm25", baseline_scores(1), dataset="nfcorpus")
    write_result(tmp_path / "b", "colbert", baseline_scores(), dataset="scifact")
    comparisons, notes = compare_results(tmp_path / "a", tmp_path / "b")
    assert [c.label for c in comparisons] == ["beir/scifact"]
    assert notes == ["beir/nfcorpus: only in the baseline (bm25); not compared."]
    with pytest.raises(HarnessError, match="The candidate has no result for beir/nfcorpus"):
        compare_results(tmp_path / "a", tmp_path / "b", require_all=True)


def test_several_results_per_dataset_pair_by_retriever_name(tmp_path):
    for root, shift in (("a", 0.0), ("b", 0.01)):
        for name in ("maxsim@dim=128", "maxsim@dim=64"):
            write_result(tmp_path / root, name, {q: v + shift for q, v in baseline_scores().items()},
                         params={"dim": name[-3:]})
    comparisons, _ = compare_results(tmp_path / "a", tmp_path / "b")
    assert [c.label for c in comparisons] == ["beir/scifact [maxsim@dim=128]", "beir/scifact [maxsim@dim=64]"]
    assert [c.delta for c in comparisons] == pytest.approx([0.01, 0.01])
    write_result(tmp_path / "c", "other", baseline_scores())
    with pytest.raises(HarnessError, match=r"Cannot pair the results for beir/scifact: the baseline has "
                                           r"maxsim@dim=128, maxsim@dim=64 and the candidate other"):
        compare_results(tmp_path / "a", tmp_path / "c")


def test_different_protocols_are_refused_unless_forced(tmp_path):
    a = write_result(tmp_path / "a", "bm25", baseline_scores())
    b = write_result(tmp_path / "b", "bm25", baseline_scores(), card=make_card("scifact", depth=100))
    with pytest.raises(ProtocolMismatchError) as e:
        compare_results(a, b)
    assert "beir/scifact" in str(e.value) and "differ in depth" in str(e.value) and "--force" in str(e.value)
    assert str(a) in str(e.value) and str(b) in str(e.value)
    (comp,), _ = compare_results(a, b, force=True)
    assert comp.pair.protocol_differences() == ["depth"]
    assert comp.to_dict()["protocol_differences"] == ["depth"]


def test_per_query_files_with_other_queries_are_refused_unless_forced(tmp_path):
    base = baseline_scores()
    a = write_result(tmp_path / "a", "bm25", base)
    b = write_result(tmp_path / "b", "bm25", {q: v for q, v in base.items() if q != "q005"})
    with pytest.raises(HarnessError, match=r"different queries \(1 only in the baseline .* e\.g\. q005\)"):
        compare_results(a, b)
    (comp,), notes = compare_results(a, b, force=True)
    assert comp.n_queries == 199 and comp.delta == 0.0
    assert notes == ["beir/scifact: compared on the 199 common queries (1 only in the baseline, 0 only in the "
                     "candidate; forced)."]


def test_bad_input_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(HarnessError, match=r"The baseline .*nowhere does not exist"):
        load_results(tmp_path / "nowhere", "baseline")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="No results under the candidate"):
        load_results(tmp_path / "empty", "candidate")
    folder = write_result(tmp_path / "a", "bm25", baseline_scores())
    with pytest.raises(HarnessError, match=r"per_query\.parquet has no per-query 'mrr@10' scores; it has ndcg@10, "
                                           r"recall@100\. Choose one of those with --metric"):
        compare_results(folder, folder, metric="mrr@10")
    (folder / "per_query.parquet").unlink()
    with pytest.raises(HarnessError, match=r"bm25-\w+ is damaged: per_query\.parquet is missing\. .*Redo it with "
                                           r"`harness run`"):
        compare_results(folder, folder)
    other = write_result(tmp_path / "b", "bm25", baseline_scores())
    (other / "record.json").write_text("{}")  # another schema, with checksums that match it
    integrity.write_manifest(other / "manifest.json", {}, ["record.json", "per_query.parquet", "run.trec.gz"])
    with pytest.raises(HarnessError, match=r"record\.json is not a valid result record"):
        load_results(other, "baseline")


def test_pairs_keep_the_order_of_datasets(tmp_path):
    for name in ("scifact", "arguana", "nfcorpus"):
        write_result(tmp_path / "a", "x", baseline_scores(), dataset=name)
    pairs, notes = match_results(load_results(tmp_path / "a"), load_results(tmp_path / "a"))
    assert [p.label for p in pairs] == ["beir/arguana", "beir/nfcorpus", "beir/scifact"] and notes == []


def test_compare_command_prints_the_table_and_json(tmp_path):
    base = baseline_scores()
    cand = {q: v - 0.04 if i % 2 else v + 0.01 for i, (q, v) in enumerate(base.items())}
    a = write_result(tmp_path / "a", "bm25", base)
    b = write_result(tmp_path / "b", "bm25-new", cand)
    shown = run_cli("compare", str(a), str(b), "--top", "3")
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "beir/scifact" in line and "ndcg@10" in line)
    assert f"{np.mean(list(base.values())):.4f}" in row and "-0.0150" in row and "100/100/0" in row
    assert "beir/scifact (ndcg@10): largest changes" in shown.stdout
    assert "percentile paired bootstrap over queries, 10000 resamples, seed 0" in shown.stdout
    as_json = run_cli("compare", str(a), str(b), "--json", "--top", "3")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    (entry,) = data["datasets"]
    assert entry["delta"] == pytest.approx(-0.015) and entry["n_queries"] == 200
    assert entry["ci"][0] < -0.015 < entry["ci"][1] < 0
    assert entry["p_randomization"] == pytest.approx(1 / 10_001)
    assert (entry["wins"], entry["losses"], entry["ties"]) == (100, 100, 0)
    assert [q["query_id"] for q in entry["changed_most"]] == ["q001", "q003", "q005"]
    assert entry["changed_most"][0]["baseline"] == base["q001"]
    assert entry["changed_most"][0]["candidate"] == pytest.approx(base["q001"] - 0.04)
    assert entry["baseline"]["retriever"] == "bm25" and entry["candidate"]["retriever"] == "bm25-new"


def test_compare_command_refuses_other_protocols_with_exit_2(tmp_path):
    a = write_result(tmp_path / "a", "bm25", baseline_scores())
    b = write_result(tmp_path / "b", "bm25", baseline_scores(), card=make_card("scifact", depth=100))
    refused = run_cli("compare", str(a), str(b))
    assert refused.returncode == 2
    assert "different protocols" in refused.stderr and "depth" in refused.stderr
    forced = run_cli("compare", str(a), str(b), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "beir/scifact†" in forced.stdout and "measured under different protocols (forced)" in forced.stdout
