"""MTEB's result files both ways, read back with mteb's own classes: `harness export --format mteb`
of a BM25 run on SciFact, `harness import-mteb` of a file as MTEB's results repository holds it,
and the reference row beside the harness's in `harness report`."""

from __future__ import annotations

import json

import pytest

from harness.results import ResultStore

from tests.conftest import SCIFACT_SUITE, run_cli
from tests.data.sources.test_local import beir_folder

mteb = pytest.importorskip("mteb")

SUITES = SCIFACT_SUITE.parent
# As MTEB's public results repository holds a model's SciFact result (results/<org>__<model>/<revision>/).
MINILM_REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
PUBLISHED = {"dataset_revision": "0228b52cf27578f30900b9e5271d331663a030d7", "task_name": "SciFact",
             "mteb_version": "1.12.0", "evaluation_time": 12.5,
             "scores": {"test": [{"hf_subset": "default", "languages": ["eng-Latn"], "main_score": 0.64508,
                                  "ndcg_at_10": 0.64508, "map_at_100": 0.60411, "recall_at_100": 0.9250,
                                  "mrr_at_10": 0.61032}]}}


@pytest.fixture(scope="module")
def scifact_results(cache_root, tmp_path_factory):
    """BM25 on the whole of SciFact test, and a smoke run of it (which MTEB must not receive)."""
    results = tmp_path_factory.mktemp("mteb") / "results"
    env = {"IR_DATASETS_HOME": str(cache_root / "ir_datasets"), "HARNESS_HOME": str(cache_root / "harness")}
    for extra in ([], ["--max-queries", "5"]):
        args = ["run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--latency-queries", "0", *extra]
        done = run_cli(*args, "--results", str(results), env=env)
        assert done.returncode == 0, done.stderr
    return results, env


def test_export_is_read_by_mteb_with_the_same_main_score(scifact_results, tmp_path):
    results, env = scifact_results
    records = {r.label: r for _, r in ResultStore(results).records()}
    bm25 = next(r for r in records.values() if not (r.protocol.get("filters") or {}).get("sample"))
    out = tmp_path / "cache" / "results"
    done = run_cli("export", str(results), "--format", "mteb", "--to", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "a sampled (smoke) run, not the task's numbers; not exported." in done.stdout
    [file] = out.rglob("SciFact.json")
    assert file.relative_to(out).parts == ("harness__bm25", "no_revision_available", "SciFact.json")
    loaded = mteb.TaskResult.from_disk(file)
    assert loaded.get_score() == pytest.approx(bm25.metrics["ndcg@10"], abs=1e-6)
    assert loaded.dataset_revision == mteb.get_task("SciFact").metadata.revision
    [entry] = loaded.scores["test"]
    assert entry["hf_subset"] == "default" and entry["languages"] == ["eng-Latn"]
    assert entry["recall_at_100"] == pytest.approx(bm25.metrics["recall@100"], abs=1e-6)
    # The results cache reads the layout as its own, model name and revision from model_meta.json.
    benchmark = mteb.ResultCache(tmp_path / "cache").load_results(tasks=["SciFact"], include_remote=False)
    [model] = benchmark.model_results
    assert (model.model_name, model.model_revision) == ("harness/bm25", "no_revision_available")
    assert model.task_results[0].get_score() == pytest.approx(bm25.metrics["ndcg@10"], abs=1e-6)


def test_the_main_score_is_mteb_s_own(tmp_path, monkeypatch):
    """A dataset mapped to JQaRAReranking exports only with MAP@1000, MTEB's main score there."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "harness"))
    beir_folder(tmp_path / "data")
    with open(tmp_path / "data" / "qrels" / "test.tsv", "a") as qrels:  # a relevant document BM25 misses
        qrels.write("q1\td1\t1\n")
    suites = tmp_path / "suites"
    suites.mkdir()
    outputs = {}
    for n, metrics in enumerate(("[ndcg@10]", "[ndcg@10, map@1000]")):
        (suites / "mine.yaml").write_text(
            "name: mine\ndatasets:\n  mine:\n    source: {kind: local, path: ../data, format: beir}\n"
            f"    language: en\n    split: test\n    metrics: {metrics}\n    mteb: {{task: JQaRAReranking}}\n")
        results = tmp_path / f"results-{n}"
        done = run_cli("run", str(suites / "mine.yaml"), "-r", "bm25", "--latency-queries", "0", "--results", str(results))
        assert done.returncode == 0, done.stderr
        done = run_cli("export", str(results), "--to", str(tmp_path / f"out-{n}"), "--suites", str(suites))
        assert done.returncode == 0, done.stderr
        outputs[n] = " ".join(done.stdout.split())
    assert ("MTEB's main score of JQaRAReranking is map_at_1000, which this result did not measure (its metrics: "
            "ndcg@10); add map@1000 to the dataset's metrics to export it.") in outputs[0]
    assert not (tmp_path / "out-0").exists()
    [(_, record)] = ResultStore(tmp_path / "results-1").records()
    [file] = (tmp_path / "out-1").rglob("JQaRAReranking.json")
    assert mteb.TaskResult.from_disk(file).get_score() == pytest.approx(record.metrics["map@1000"], abs=1e-6)
    assert record.metrics["map@1000"] != record.metrics["ndcg@10"]


def test_two_results_of_one_name_are_not_exported_into_one_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "harness"))
    beir_folder(tmp_path / "data")
    suites, results = tmp_path / "suites", tmp_path / "results"
    suites.mkdir()
    for k1 in (0.9, 1.2):  # one name, two configurations: two result folders
        (suites / "mine.yaml").write_text(
            "name: mine\ndatasets:\n  mine:\n    source: {kind: local, path: ../data, format: beir}\n"
            "    language: en\n    split: test\n    mteb: {task: SciFact}\n"
            f"retrievers:\n  bm25: {{class: bm25, params: {{k1: {k1}}}}}\n")
        done = run_cli("run", str(suites / "mine.yaml"), "-r", "bm25", "--latency-queries", "0", "--results", str(results))
        assert done.returncode == 0, done.stderr
    keys = sorted(record.key for _, record in ResultStore(results).records())
    done = run_cli("export", str(results), "--to", str(tmp_path / "out"), "--suites", str(suites))
    assert done.returncode == 2 and not (tmp_path / "out").exists()
    message = " ".join(done.stderr.split())
    assert message.startswith("error: Two results export to harness/bm25's SciFact test/default: ")
    assert all(key in message for key in keys) and "Remove one of the result folders" in message


def test_imported_mteb_numbers_are_reference_rows_beside_the_harness_s(scifact_results, tmp_path):
    results, env = scifact_results
    published = tmp_path / "mteb-results" / "sentence-transformers__all-MiniLM-L6-v2" / MINILM_REVISION
    published.mkdir(parents=True)
    (published / "SciFact.json").write_text(json.dumps(PUBLISHED))
    (published / "NoSuchTask.json").write_text("{\"task_name\": ")
    done = run_cli("import-mteb", str(published / "SciFact.json"), "--results", str(results), env=env)
    assert done.returncode == 0, done.stderr
    reported = [r for _, r in ResultStore(results).records() if r.origin == "reported"]
    [row] = reported
    assert row.label == "sentence-transformers/all-MiniLM-L6-v2 (MTEB)"
    assert row.metrics == {"ndcg@10": 0.64508, "map@100": 0.60411, "recall@100": 0.925, "mrr@10": 0.61032}
    assert row.retriever["params"] == {"model": "sentence-transformers/all-MiniLM-L6-v2", "revision": MINILM_REVISION}

    bad = run_cli("import-mteb", str(published / "NoSuchTask.json"), "--results", str(tmp_path / "other"), env=env)
    assert bad.returncode == 2 and bad.stderr.startswith(f"error: {published / 'NoSuchTask.json'}: not an MTEB result file")

    # Only the full run: a column holds one protocol, and the smoke run is another.
    full = tmp_path / "full"
    for folder, record in ResultStore(results).records():
        if not (record.protocol.get("filters") or {}).get("sample"):
            (full / folder.relative_to(results)).parent.mkdir(parents=True, exist_ok=True)
            (full / folder.relative_to(results)).symlink_to(folder)
    done = run_cli("report", str(full), "--out", str(tmp_path / "reports"), "-f", "markdown", "--baseline", "bm25",
                   "--permutations", "200", env=env)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "reports" / "results.md").read_text()
    line = next(li for li in table.splitlines() if li.startswith("| sentence-transformers/all-MiniLM-L6-v2 (MTEB)"))
    assert "64.5ʳ" in line and "▲" not in line and "▼" not in line
    assert "ʳ reported in MTEB's result files" in table
    compared = run_cli("compare", str(full), str(full), env=env)  # reference rows are for reports only
    assert compared.returncode == 0 and "(MTEB)" not in compared.stdout
