"""The Ray executor on a real local Ray (started once for the module, 2 CPUs): the CLI joins it
with --ray-address, runs units as Ray tasks on 2 workers, and stores what a local run stores,
also when a worker is killed in the middle of a unit, and when a unit fails (--keep-going)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.executors import threads_per_worker

from tests.conftest import REPO, run_cli
from tests.executors.grid_world import SAMPLE, assert_same_results, leftovers, processes, stored, write_suite

ray = pytest.importorskip("ray", reason="the distributed extra (Ray) is not installed")

STEP_TITLE = b"ray::harness_step"  # the process title of a Ray worker while it runs a step


@pytest.fixture(scope="module")
def grid(cache_root, tmp_path_factory):
    """The suite, and the results of a local run of its two BM25 units."""
    root = tmp_path_factory.mktemp("ray-grid")
    suite = write_suite(root)
    done = run_cli("run", str(suite), "-r", "bm25", "-r", "bm25-k12", "--results", str(root / "local"), *SAMPLE)
    assert done.returncode == 0, done.stderr
    return suite, root / "local"


def ray_run(suite: Path, results: Path, address: str, *retrievers: str) -> list[str]:
    names = [arg for name in retrievers for arg in ("-r", name)]
    return [sys.executable, "-m", "harness", "run", str(suite), *names, "--results", str(results), *SAMPLE,
            "--executor", "ray", "--workers", "2", "--ray-address", address]


def test_ray_with_two_workers_stores_what_local_stores(cluster, grid, tmp_path):
    suite, local = grid
    done = subprocess.run(ray_run(suite, tmp_path / "ray", cluster, "bm25", "bm25-k12"), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(line.split()[:3] for line in done.stdout.splitlines() if line.strip().startswith("done")) == [
        ["done", "scifact", "bm25"], ["done", "scifact", "bm25-k12"]]
    assert_same_results(tmp_path / "ray", local)


def _step_workers() -> list[int]:
    """Processes of this machine that are Ray workers running a harness step now."""
    return processes(lambda pid: Path(f"/proc/{pid}/cmdline").read_bytes().startswith(STEP_TITLE))


def test_a_worker_killed_mid_unit_is_replaced_and_the_metrics_are_the_same(cluster, grid, tmp_path):
    suite, local = grid
    run = subprocess.Popen(ray_run(suite, tmp_path / "ray", cluster, "bm25", "bm25-k12"), cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        for pid in _step_workers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed = pid
            break
        time.sleep(0.005)
    out, err = run.communicate(timeout=600)
    assert killed is not None, f"no worker was seen running a unit\n{err}"
    assert run.returncode == 0, err
    assert {label: metrics for label, (metrics, _) in stored(tmp_path / "ray").items()} == {
        label: metrics for label, (metrics, _) in stored(local).items()}
    assert_same_results(tmp_path / "ray", local)


def test_keep_going_on_ray_reports_the_failed_unit_and_stores_the_others(cluster, grid, tmp_path):
    suite, local = grid
    done = subprocess.run(ray_run(suite, tmp_path / "ray", cluster, "nan", "bm25"), cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2, done.stdout  # without --keep-going: the harness's error, status 2
    assert "error: Retriever 'nan' on dataset 'scifact' of suite 'beir' gave" in done.stderr
    kept = subprocess.run(ray_run(suite, tmp_path / "kept", cluster, "nan", "bm25") + ["--keep-going"], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert kept.returncode == 1, kept.stderr
    lines = kept.stdout.splitlines()
    assert "1 of 2 units failed:" in lines
    assert lines[lines.index("1 of 2 units failed:") + 1].startswith(
        "  beir/scifact/nan: Retriever 'nan' on dataset 'scifact' of suite 'beir' gave ")
    assert sorted(stored(tmp_path / "kept")) == ["bm25"]
    assert stored(tmp_path / "kept")["bm25"][0] == stored(local)["bm25"][0]
    assert leftovers(tmp_path / "kept") == []


def tokenizer_threads(texts: list[str]) -> tuple[str | None, int]:
    """On a worker: the torch threads its executor gave, and the threads a Rust tokenizer's batch
    call started in this process (its thread pool: one per core unless told otherwise)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    before = len(os.listdir("/proc/self/task"))
    assert [e.ids for e in tokenizer.encode_batch(texts)][:2] == [[1, 2], [2, 0]]
    return os.environ.get("HARNESS_THREADS"), len(os.listdir("/proc/self/task")) - before


def test_a_steps_tokenizer_takes_its_share_of_the_cores_as_torch_does(cluster):
    from harness.executors.ray import RayExecutor

    executor = RayExecutor(workers=2)  # joins the module's Ray (2 CPU slots on this 2-core machine)
    slots = threads_per_worker(os.cpu_count(), 2)
    try:
        (done,) = list(executor.map(tokenizer_threads, [["a b", "b c"] * 2000]))
    finally:
        executor.close()
    assert not done.failed, done.traceback
    # One thread a worker: the batch runs on the step's own thread, no pool of the tokenizer's.
    torch_threads, started = done.value
    assert torch_threads == str(slots) and started <= (0 if slots == 1 else slots)
