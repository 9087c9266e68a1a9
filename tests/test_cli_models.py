"""`harness run --model/--format/--param/--name/--retrievers` over one or more suites, as a user
runs it, on a seeded sample of SciFact (5 queries, 40 documents) with all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli_models import model_label, parse_params
from harness.errors import ParameterError

from tests.checkpoints import MINILM_ID, local_minilm
from tests.conftest import SCIFACT_SUITE, run_cli

SAMPLE = ("--max-queries", "5", "--max-documents", "40", "--latency-queries", "0")


def records(results: Path) -> dict[str, dict]:
    return {r["retriever"]["name"]: r for r in (json.loads(p.read_text()) for p in results.rglob("record.json"))}


def test_params_are_read_as_yaml_and_name_the_row():
    params = parse_params(["dim=128", "storage=int8", "skiplist=[a, b]"])
    assert params == {"dim": 128, "storage": "int8", "skiplist": ["a", "b"]}
    assert model_label(MINILM_ID, params) == "all-MiniLM-L6-v2@dim=128,storage=int8,skiplist=['a', 'b']"
    assert model_label("/models/my-colbert/", {}) == "my-colbert"
    with pytest.raises(ParameterError, match=r"--param 'dim' is not key=value; write e.g. --param dim=128"):
        parse_params(["dim"])


def test_two_models_from_the_command_line_give_two_rows_like_a_suite_entry(offline, tmp_path):
    """The hub id and a local copy of the same weights: the same scores, two rows; the hub id's row
    is the suite's own `minilm-maxsim@dim=128` configuration (the same result key), run without
    editing a file."""
    folder = local_minilm(tmp_path / "my-minilm")
    results = tmp_path / "results"
    done = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "--model", MINILM_ID, "--model", str(folder),
                   "--format", "plain", "--param", "dim=128", *SAMPLE, "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("encoding documents: 100% (40/40 docs") == 2  # progress, one line per 10%
    rows = records(results)
    assert set(rows) == {"all-MiniLM-L6-v2@dim=128", "my-minilm@dim=128"}
    hub, local = rows["all-MiniLM-L6-v2@dim=128"], rows["my-minilm@dim=128"]
    assert hub["retriever"]["params"] == {"model": MINILM_ID, "format": "plain", "dim": 128}
    assert local["retriever"]["params"]["model"] == str(folder)
    assert hub["metrics"] == pytest.approx(local["metrics"], abs=1e-6)
    assert hub["metrics"]["ndcg@10"] > 0.3  # 5 queries among 40 documents: MiniLM finds most

    done = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "minilm-maxsim@dim=128", *SAMPLE,
                   "--results", str(results))
    assert done.returncode == 0, done.stderr
    suite_row = records(results)["minilm-maxsim@dim=128"]
    assert suite_row["key"] == hub["key"] and suite_row["metrics"] == hub["metrics"]


def test_retrievers_file_runs_on_every_suite_and_name_labels_the_row(offline, tmp_path):
    systems = tmp_path / "systems.yaml"
    systems.write_text("retrievers:\n  bm25-default: {class: bm25}\n  bm25-pyserini:\n    class: bm25\n"
                       "    params: {k1: 0.9, b: 0.4, stemmer: porter, stopwords: en}\n")
    other = tmp_path / "beir-copy.yaml"  # a second suite: the same data under another name
    other.write_text(SCIFACT_SUITE.read_text().replace("name: beir", "name: beir-copy", 1))
    results = tmp_path / "results"
    done = run_cli("run", str(SCIFACT_SUITE), str(other), "-d", "scifact", "--retrievers", str(systems), *SAMPLE,
                   "--model", MINILM_ID, "--format", "plain", "--param", "dim=64", "--name", "mini64",
                   "--results", str(results))
    assert done.returncode == 0, done.stderr
    found = {str(p.parent.relative_to(results)).rsplit("-", 1)[0] for p in results.rglob("record.json")}
    assert found == {f"{suite}/scifact/{name}" for suite in ("beir", "beir-copy")
                     for name in ("bm25-default", "bm25-pyserini", "mini64")}
    rows = records(results / "beir")
    assert rows["mini64"]["retriever"]["params"] == {"model": MINILM_ID, "format": "plain", "dim": 64}
    assert rows["bm25-pyserini"]["retriever"]["params"]["k1"] == 0.9
    assert rows["bm25-default"]["retriever"]["params"] == {}
    assert rows["bm25-default"]["key"] != rows["bm25-pyserini"]["key"]
    assert rows["bm25-default"]["protocol_hash"] == rows["mini64"]["protocol_hash"]  # one sample, one protocol


@pytest.mark.parametrize("args, message", [
    (["--param", "dim=128"], "error: --format, --param and --name set up a --model; give --model ID_OR_PATH"),
    (["--model", "a/b", "--model", "c/b"], "error: --model a/b and --model c/b would both be named 'b'; name them "
                                           "apart with one --name per --model."),
    (["--model", "a/b", "--name", "x", "--name", "y"], "error: 2 --name for 1 --model: give one --name per --model"),
    (["--model", "a/b", "--param", "precision=1"], "error: --param precision: `precision` is 1, but "
                                                   "LateInteractionRetriever takes a str"),
    (["-d", "nope"], "error: Suite 'beir' (suites/beir.yaml) has no dataset 'nope'."),
])
def test_command_line_mistakes_are_one_paragraph(tmp_path, args, message):
    done = run_cli("run", "suites/beir.yaml", *args, "--results", str(tmp_path / "results"))
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert not (tmp_path / "results").exists()


def test_a_malformed_retrievers_file_names_its_line(tmp_path):
    systems = tmp_path / "systems.yaml"
    systems.write_text("bm25: {class: bm25}\nmine:\n  klass: bm25\n")
    done = run_cli("run", "suites/beir.yaml", "-d", "scifact", "--retrievers", str(systems))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: ") and len(lines) == 2, done.stderr  # both problems, each at its line
    assert sorted(line.removeprefix("error: ") for line in lines) == [
        f"{systems}:2: field `mine.class`: required field is missing.",
        f"{systems}:3: field `mine.klass`: unknown field (a typo?). A retriever takes `class`, `params` and `sweep`: see \"Retrievers\" in README.md."]
