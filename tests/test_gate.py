"""The regression gate: verdicts, exit codes, JSON and JUnit output, checkpoints as candidates."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.compare import compare_results
from harness.gate import gate
from harness.pipeline import Unit, execute
from harness.results import ResultStore
from harness.retrievers.bm25 import BM25Retriever

from tests.conftest import SCIFACT_SUITE, run_cli
from tests.helpers import make_card
from tests.test_compare import baseline_scores, write_result


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """The command in this process: (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def worse(scores, by=0.08):
    return {q: max(0.0, v - by) for q, v in scores.items()}


def noisy(scores, size=0.02):
    """Per-query changes of +-size, alternating, that cancel out: noise, not a change of the system."""
    return {q: v + (size if i % 2 else -size) for i, (q, v) in enumerate(scores.items())}


def drop_with_spread(scores, mean, sd, seed):
    """Per-query differences with exactly this mean and standard deviation."""
    x = np.random.default_rng(seed).normal(size=len(scores))
    diffs = mean + sd * (x - x.mean()) / x.std()
    return {q: v + d for (q, v), d in zip(scores.items(), diffs)}


def test_gate_verdicts(tmp_path):
    base = baseline_scores()
    a = write_result(tmp_path / "a", "bm25", base)
    cases = {
        "same": (base, False, "no drop"),
        "worse": (worse(base), True, "drop beyond 0.005, significant"),
        "noise": (noisy(base), False, "no drop"),
        # A mean drop of 0.01 (beyond the tolerance) on queries that move by 0.3 either way: not
        # evidence of a drop beyond 0.005.
        "spread": (drop_with_spread(base, -0.01, 0.3, seed=1), False, "drop beyond tolerance, not significant"),
        "small": (drop_with_spread(base, -0.004, 0.001, seed=1), False, "drop within tolerance"),
    }
    for name, (scores, regression, reason) in cases.items():
        b = write_result(tmp_path / name, "cand", scores)
        report = gate(compare_results(a, b)[0], tolerance=0.005, alpha=0.05)
        (verdict,) = report.verdicts
        assert (verdict.regression, verdict.reason) == (regression, reason), name
        assert report.passed is not regression
    same = gate(compare_results(a, a)[0])
    assert same.verdicts[0].p_value == 1.0 and same.verdicts[0].p_adjusted == 1.0
    worse_report = gate(compare_results(a, write_result(tmp_path / "w", "cand", worse(base)))[0])
    assert worse_report.verdicts[0].p_value == pytest.approx(1 / 10_001)
    assert worse_report.verdicts[0].comparison.delta == pytest.approx(-0.08)


def test_holm_keeps_two_borderline_drops_from_failing_together(tmp_path):
    """One dataset with a one-sided p of about 0.045 fails at alpha 0.05; two such datasets are two
    chances of a false alarm, and Holm (p x 2) passes both."""
    base = baseline_scores()
    write_result(tmp_path / "a", "bm25", base, dataset="scifact")
    write_result(tmp_path / "a", "bm25", base, dataset="nfcorpus")
    write_result(tmp_path / "b", "cand", drop_with_spread(base, -0.017, 0.1, seed=0), dataset="scifact")
    write_result(tmp_path / "b", "cand", drop_with_spread(base, -0.017, 0.1, seed=1), dataset="nfcorpus")
    report = gate(compare_results(tmp_path / "a", tmp_path / "b")[0], tolerance=0.005, alpha=0.05)
    p = [v.p_value for v in report.verdicts]
    assert all(0.025 < x <= 0.05 for x in p)
    # Holm by hand for two p-values: the smaller doubled, the larger max(doubled smaller, itself).
    low, high = sorted(p)
    expected = {low: 2 * low, high: max(2 * low, high)}
    assert [v.p_adjusted for v in report.verdicts] == pytest.approx([min(1.0, expected[x]) for x in p])
    assert report.passed and [v.reason for v in report.verdicts] == ["drop beyond tolerance, not significant"] * 2
    alone = gate(compare_results(next((tmp_path / "a" / "beir" / "scifact").iterdir()),
                                 next((tmp_path / "b" / "beir" / "scifact").iterdir()))[0])
    assert not alone.passed and alone.verdicts[0].p_adjusted == alone.verdicts[0].p_value


def test_regress_exit_codes_json_and_junit(tmp_path, capsys):
    base = baseline_scores()
    write_result(tmp_path / "base", "bm25", base, dataset="scifact")
    write_result(tmp_path / "base", "bm25", baseline_scores(1), dataset="nfcorpus")
    write_result(tmp_path / "same", "bm25", base, dataset="scifact")
    write_result(tmp_path / "same", "bm25", baseline_scores(1), dataset="nfcorpus")
    write_result(tmp_path / "worse", "cand", worse(base), dataset="scifact")
    write_result(tmp_path / "worse", "cand", noisy(baseline_scores(1)), dataset="nfcorpus")
    write_result(tmp_path / "noise", "cand", noisy(base), dataset="scifact")
    write_result(tmp_path / "noise", "cand", noisy(baseline_scores(1), 0.05), dataset="nfcorpus")

    code, out, _ = cli(capsys, "regress", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "same"))
    assert code == 0
    assert "PASS: no dataset dropped by more than 0.005 with significance (2 gated)." in out
    assert "Holm-Bonferroni over 2 datasets" in out

    code, out, _ = cli(capsys, "regress", "--baseline", str(tmp_path / "noise"), "--candidate", str(tmp_path / "base"),
                       "--tolerance", "0.005")
    assert code == 0 and "PASS" in out

    report_json, report_xml = tmp_path / "out" / "gate.json", tmp_path / "out" / "gate.xml"
    code, out, _ = cli(capsys, "regress", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "worse"),
                       "--tolerance", "0.005", "--alpha", "0.05", "--json", str(report_json), "--junit", str(report_xml))
    assert code == 1
    fail_line = next(line for line in out.splitlines() if line.startswith("FAIL"))
    mean = np.mean(list(base.values()))
    assert fail_line.startswith(f"FAIL: regression on beir/scifact (ndcg@10 {mean:.4f} -> {mean - 0.08:.4f}, "
                                "delta -0.0800, 95% CI [-0.0800, -0.0800], p 0.0001, Holm-adjusted p 0.0002 <= "
                                "alpha 0.05, tolerance 0.005)")
    assert "nfcorpus" not in fail_line

    data = json.loads(report_json.read_text())
    assert data["verdict"] == "fail" and data["failing"] == ["beir/scifact"]
    assert data["procedure"]["null_hypothesis"] == "delta >= -0.005"
    assert data["procedure"]["correction"] == "holm-bonferroni" and data["procedure"]["alpha"] == 0.05
    rows = {row["dataset"]: row for row in data["datasets"]}
    assert rows["scifact"]["verdict"] == "fail" and rows["nfcorpus"]["verdict"] == "pass"
    assert rows["scifact"]["delta"] == pytest.approx(-0.08) and rows["scifact"]["baseline_mean"] == pytest.approx(mean)
    assert rows["scifact"]["p_value"] == pytest.approx(1 / 10_001)
    assert rows["scifact"]["p_adjusted"] == pytest.approx(2 / 10_001)  # the smaller of two p-values, doubled
    # +-0.02 per query, cancelling: a resampled mean below -0.005 is a 3.5-standard-error event.
    assert rows["nfcorpus"]["p_adjusted"] > 0.99 and rows["nfcorpus"]["verdict"] == "pass"
    assert rows["scifact"]["losses"] == 200 and rows["scifact"]["changed_most"][0]["delta"] == pytest.approx(-0.08)

    root = ET.parse(report_xml).getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("harness regress", "2", "1")
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["tolerance"] == "0.005" and properties["correction"] == "holm-bonferroni"
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("beir/nfcorpus", "harness.regress.beir"), ("beir/scifact", "harness.regress.beir")]
    assert cases[0].find("failure") is None and cases[0].find("system-out").text.endswith("adjusted p 0.9998: no drop")
    failure = cases[1].find("failure")
    assert failure.get("type") == "regression"
    assert failure.get("message") == "regression on " + fail_line.removeprefix("FAIL: regression on ")
    assert failure.text.splitlines()[0] == f"q000: {base['q000']:.4f} -> {base['q000'] - 0.08:.4f} (-0.0800)"


def test_regress_refuses_bad_input_with_exit_2(tmp_path, capsys):
    base = write_result(tmp_path / "base", "bm25", baseline_scores())
    other = write_result(tmp_path / "other", "bm25", worse(baseline_scores()), card=make_card("scifact", depth=100))
    report_json = tmp_path / "gate.json"
    code, out, err = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(other), "--json", str(report_json))
    assert code == 2 and "different protocols" in err and "differ in depth" in err and "--force" in err
    assert not report_json.exists()
    code, out, _ = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(other), "--force",
                       "--json", str(report_json))
    assert code == 1 and "†" in out  # forced, marked, and then really gated
    assert json.loads(report_json.read_text())["datasets"][0]["protocol_differences"] == ["depth"]

    code, _, err = cli(capsys, "regress", "--baseline", str(tmp_path / "missing"), "--candidate", str(base))
    assert code == 2 and "The baseline" in err and "does not exist" in err
    code, _, err = cli(capsys, "regress", "--baseline", str(base))
    assert code == 2 and "--candidate RESULTS" in err
    code, _, err = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(base), "--candidate-model", "x")
    assert code == 2 and "not both" in err
    code, _, err = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(base), "--tolerance", "-0.01")
    assert code == 2 and "Invalid value for '--tolerance'" in err  # refused as the command line is read
    code, _, err = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(base), "--alpha", "1.5")
    assert code == 2 and "'--alpha': 1.5 is not a probability strictly between 0 and 1" in err
    code, _, err = cli(capsys, "regress", "--baseline", str(base), "--candidate", str(base), "--resamples", "100",
                       "--alpha", "0.001")
    assert code == 2 and "could never fail" in err
    # A candidate that lacks a dataset the baseline has cannot pass the gate on it.
    write_result(tmp_path / "two", "bm25", baseline_scores(), dataset="nfcorpus")
    write_result(tmp_path / "two", "bm25", baseline_scores(), dataset="scifact")
    code, _, err = cli(capsys, "regress", "--baseline", str(tmp_path / "two"), "--candidate", str(base))
    assert code == 2 and "The candidate has no result for beir/nfcorpus" in err


class BM25Checkpoint(BM25Retriever):
    """A retriever with a `model` parameter that runs in a second: its "checkpoint" is a JSON file
    of BM25 parameters."""

    def __init__(self, model: str):
        self.model = model
        super().__init__(**json.loads(Path(model).read_text()))


def test_a_checkpoint_is_gated_by_re_running_the_baselines_configuration(offline, tmp_path, capsys):
    good, weak = tmp_path / "good.json", tmp_path / "weak.json"
    good.write_text(json.dumps({"k1": 0.9, "b": 0.4}))
    weak.write_text(json.dumps({"k1": 0.1, "b": 0.0, "stemmer": None, "stopwords": None}))
    shutil.copy(good, tmp_path / "good-again.json")
    suites = tmp_path / "suites"
    suites.mkdir()
    data = yaml.safe_load(SCIFACT_SUITE.read_text())
    data["retrievers"] = {"ckpt": {"class": "tests.test_gate:BM25Checkpoint", "params": {"model": str(good)}},
                          "bm25": {"class": "bm25"}}
    suite = suites / "beir.yaml"
    suite.write_text(yaml.safe_dump(data))
    for name in ("ckpt", "bm25"):
        execute(Unit(str(suite), "scifact", name, (100, 1000)), tmp_path / "base")

    report = tmp_path / "weak.json.out"
    code, out, _ = cli(capsys, "regress", "--baseline", str(tmp_path / "base"), "--candidate-model", str(weak),
                       "--suites", str(suites), "--candidate-results", str(tmp_path / "cand-weak"),
                       "--json", str(report))
    assert code == 1
    assert "bm25: its retriever has no `model` parameter; not re-run, not gated" in out
    (row,) = json.loads(report.read_text())["datasets"]
    assert row["label"] == "beir/scifact" and row["verdict"] == "fail" and row["n_queries"] == 100
    assert row["candidate"]["retriever"] == "ckpt" and row["delta"] < -0.02
    ((folder, record),) = list(ResultStore(tmp_path / "cand-weak").records())
    assert record.retriever["params"] == {"model": str(weak)}
    assert record.protocol["filters"]["sample"] == {"queries": 100, "documents": 1000, "seed": 0}
    written = yaml.safe_load((tmp_path / "cand-weak" / "beir.candidate.yaml").read_text())
    assert written["retrievers"]["ckpt"]["params"] == {"model": str(weak)}

    code, out, _ = cli(capsys, "regress", "--baseline", str(tmp_path / "base"), "--candidate-model",
                       str(tmp_path / "good-again.json"), "--suite", str(suite),
                       "--candidate-results", str(tmp_path / "cand-good"), "--json", str(report))
    assert code == 0
    (row,) = json.loads(report.read_text())["datasets"]
    assert row["delta"] == 0.0 and row["ties"] == 100 and row["verdict"] == "pass"

    code, _, err = cli(capsys, "regress", "--baseline", str(tmp_path / "base"), "--candidate-model", str(weak),
                       "--suites", str(tmp_path), "--candidate-results", str(tmp_path / "cand-x"))
    assert code == 2 and "No suite named 'beir'" in err and "--suite FILE" in err


def test_end_to_end_on_sampled_scifact(offline, tmp_path):
    """BM25 as the BEIR suite configures it, on 100 SciFact queries (1,000 documents), is the
    baseline. Candidates: BM25 without stemming and stop words and with k1=0.1, b=0 (truly
    worse), and BM25 with k1=5, b=1 (other per-query scores, about the same quality). One `run`
    of a copy of the suite with the three configurations, then the gate on each candidate."""
    env = {"IR_DATASETS_HOME": str(offline / "ir_datasets"), "HARNESS_HOME": str(offline / "harness")}
    data = yaml.safe_load(SCIFACT_SUITE.read_text())
    data["retrievers"] = {
        "bm25": data["retrievers"]["bm25"],
        "bm25-weak": {"class": "bm25", "params": {"k1": 0.1, "b": 0.0, "stemmer": None, "stopwords": None}},
        "bm25-k5": {"class": "bm25", "params": {"k1": 5.0, "b": 1.0}}}
    variants = tmp_path / "beir-variants.yaml"
    variants.write_text(yaml.safe_dump(data))
    done = run_cli("run", str(variants), "-d", "scifact", "--max-queries", "100", "--max-documents", "1000",
                   "-r", "bm25", "-r", "bm25-weak", "-r", "bm25-k5", "--results", str(tmp_path / "results"), env=env)
    assert done.returncode == 0, done.stderr
    folders = {record.label: folder for folder, record in ResultStore(tmp_path / "results").records()}

    weak = run_cli("regress", "--baseline", str(folders["bm25"]), "--candidate", str(folders["bm25-weak"]),
                   "--junit", str(tmp_path / "weak.xml"), env=env)
    assert weak.returncode == 1, weak.stderr
    assert "FAIL: regression on beir/scifact (ndcg@10 0.8413 -> 0.7847, delta -0.0566" in weak.stdout
    row = next(line for line in weak.stdout.splitlines() if line.startswith("│ beir/scifact"))
    assert "FAIL" in row and "-0.0566" in row
    case = ET.parse(tmp_path / "weak.xml").getroot().find("testsuite/testcase")
    assert case.get("name") == "beir/scifact" and "beir/scifact" in case.find("failure").get("message")

    similar = run_cli("regress", "--baseline", str(folders["bm25"]), "--candidate", str(folders["bm25-k5"]), env=env)
    assert similar.returncode == 0, similar.stderr
    row = next(line for line in similar.stdout.splitlines() if line.startswith("│ beir/scifact"))
    assert "pass" in row and "0.8371" in row and "-0.0042" in row
