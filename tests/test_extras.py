"""The core without its extras: in a fresh process whose import system refuses the extras' modules
(torch, transformers, sentence-transformers, safetensors, mteb, datasets, ray), `evaluate`,
`import` and BM25 runs work, and the commands that need an extra name it. matplotlib stays: ranx,
a core dependency, requires it (through seaborn) and imports it, so no install of the core lacks
it; `report`'s own check is shown with matplotlib hidden too."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from harness.extras import MODULE_EXTRAS

from tests.conftest import REPO, SCIFACT_SUITE

# Every extra's modules but those a core dependency brings anyway.
BROUGHT_BY_THE_CORE = {"matplotlib"}
HIDE_EXTRAS = """
import sys
HIDDEN = sys.argv.pop(1).split(",")

class HideExtras:
    # First on sys.meta_path: the modules are not there, as in an install of the core alone.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideExtras())
from harness.cli import main
main(sys.argv[1:])
"""


def core_only(*args: str, hide: set[str] = set(MODULE_EXTRAS) - BROUGHT_BY_THE_CORE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_EXTRAS, ",".join(sorted(hide)), *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=600)


def test_the_hidden_modules_cannot_be_imported():
    done = subprocess.run([sys.executable, "-c", HIDE_EXTRAS.replace("from harness.cli import main\nmain(sys.argv[1:])",
                                                                     "import torch"), "torch"], capture_output=True, text=True)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'torch'" in done.stderr


def test_evaluate_runs_on_the_core(tmp_path):
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\nq2 Q0 d3 1 1.0 x\n")
    (tmp_path / "qrels.trec").write_text("q1 0 d2 1\nq2 0 d3 1\n")
    done = core_only("evaluate", "--run", str(tmp_path / "run.trec"), "--qrels", str(tmp_path / "qrels.trec"),
                     "--metric", "ndcg@10", "--metric", "mrr@10", "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["metrics"]
    # q1: the relevant document second (nDCG 1/log2(3), RR 1/2); q2: first.
    assert metrics["ndcg@10"] == pytest.approx((1 / 1.5849625007211562 + 1) / 2, abs=1e-6)
    assert metrics["mrr@10"] == pytest.approx(0.75, abs=1e-6)


def test_bm25_and_import_run_on_the_core(offline, tmp_path):
    results = tmp_path / "results"
    done = core_only("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--max-queries", "20",
                     "--results", str(results))
    assert done.returncode == 0, done.stderr
    [run_file] = results.rglob("run.trec.gz")
    assert "ndcg@10=" in done.stdout
    with gzip.open(run_file, "rt") as lines:
        assert len({line.split()[0] for line in lines}) == 20
    done = core_only("import", str(run_file), "--suite", str(SCIFACT_SUITE), "-d", "scifact", "--name", "theirs",
                     "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert "theirs ndcg@10=" in done.stdout


@pytest.mark.parametrize("args, extra, module", [
    (["run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "dense-minilm"], "neural", "torch"),
    (["run", str(SCIFACT_SUITE), "-d", "scifact", "--model", "org/model"], "neural", "torch"),
    (["report", "results-that-need-not-exist"], "reports", "matplotlib"),
    (["export", "results-that-need-not-exist", "--format", "mteb"], "mteb", "mteb"),
])
def test_a_command_needing_a_missing_extra_names_it(tmp_path, args, extra, module):
    done = core_only(*args, *(["--results", str(tmp_path / "results")] if args[0] == "run" else []),
                     hide=set(MODULE_EXTRAS))
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert f"needs {module}, which is not installed. Install the {extra} extra with " \
           f"`pip install 'late-interaction-harness[{extra}]'`" in text, text
    assert not (tmp_path / "results").exists()
