"""``record.vs_fp32``: an int8 result against the fp32 result of the same card at each dim, stored
with the int8 result when fp32 ran first, and in the report's note either way, equal to the
difference of the two stored results' per-query scores."""

import numpy as np
import pytest

from harness import pipeline
from harness.report.write import write_reports
from harness.results import load_per_query, load_record
from harness.significance import paired_bootstrap, randomization_test
from harness.suite import load_suite
from tests.helpers import scifact_suite

SUITE = scifact_suite("int8-check", "int8 against fp32 on a SciFact sample", """\
  minilm:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, device: cpu}
    sweep: {precision: [fp32, int8], dim: [384, 64]}
""")


def _run(tmp_path, results, int8_first: bool) -> dict:
    suite = load_suite(tmp_path / "suite.yaml")
    units = pipeline.plan(suite, ["scifact"], sample=(30, 150), latency_queries=0)
    units.sort(key=lambda u: ("precision=int8" in u.retriever) != int8_first)
    return {u.retriever: pipeline.execute(u, results).folder for u in units}


def test_int8_deltas_are_stored_when_fp32_ran_first_and_reported_either_way(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    (tmp_path / "suite.yaml").write_text(SUITE)
    folders = _run(tmp_path, tmp_path / "results", int8_first=False)
    assert len(folders) == 4
    expected = {}
    for name, folder in folders.items():
        record = load_record(folder)
        if record.protocol["system"]["precision"] == "fp32":
            assert record.vs_fp32 is None
            continue
        fp32_folder = folders[name.replace("precision=int8", "precision=fp32")]
        fp32, int8 = load_per_query(fp32_folder), load_per_query(folder)
        assert list(fp32["query_id"]) == list(int8["query_id"])  # the same 30 queries
        a, b = list(fp32["ndcg@10"]), list(int8["ndcg@10"])
        boot = paired_bootstrap(a, b)
        d = record.vs_fp32
        assert d["fp32_key"] == load_record(fp32_folder).key and d["n_queries"] == 30 and d["metric"] == "ndcg@10"
        assert d["delta"] == boot.delta == pytest.approx(np.mean(b) - np.mean(a), abs=1e-12)
        assert d["ci95"] == [boot.low, boot.high] and d["ci95"][0] <= d["delta"] <= d["ci95"][1]
        assert d["p_value"] == randomization_test(a, b) and d["int8"] == record.main_score
        expected[record.label] = d
    assert len(expected) == 2 and len({d["fp32_key"] for d in expected.values()}) == 2  # each dim its own fp32

    # int8 first: nothing to compare with when it ran, so the report computes the same deltas.
    later = _run(tmp_path, tmp_path / "later", int8_first=True)
    assert all(load_record(f).vs_fp32 is None for f in later.values())
    for results in ("results", "later"):
        write_reports(tmp_path / results, tmp_path / f"report-{results}", formats_=["markdown"], plots=False)
        text = next((tmp_path / f"report-{results}").glob("*.md")).read_text()
        assert "int8 − fp32 (×100, the main metric on the same queries" in text
        for label, d in expected.items():
            low, high = d["ci95"]
            assert f"{label} on scifact {100 * d['delta']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]" in text
        assert "precision=fp32 on scifact" not in text  # fp32 rows get no delta
