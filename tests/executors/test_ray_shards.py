"""Document shards as Ray tasks nested in their unit's task, on a real local Ray (2 CPUs): encoding
and searching shards on 2 workers gives the local run (the MiniLM token model at d128 and the
dense baseline, each in 5 or more shards), and a worker killed while it encodes a shard costs
only that shard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.results import ResultStore

from tests.conftest import REPO, run_cli
from tests.executors.grid_world import assert_same_results, assert_same_runs, processes, stored

ray = pytest.importorskip("ray", reason="the distributed extra (Ray) is not installed")

SUITE = """name: beir
defaults:
  language: en
  split: test
  max_length: {query: 32, document: 128}
  metrics: [ndcg@10, recall@100]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  li:
    class: late_interaction
    params: {model: sentence-transformers/all-MiniLM-L6-v2, format: plain, dim: 128, shard_tokens: 6000}
  dense:
    class: dense
    params: {model: sentence-transformers/all-MiniLM-L6-v2, shard_tokens: 45}
"""
SAMPLE = ("-d", "scifact", "--max-queries", "20", "--max-documents", "200", "--latency-queries", "0")


@pytest.fixture(scope="module")
def local(cache_root, tmp_path_factory):
    """The suite, a local run of both retrievers, whose stores are cut into shards, and the number
    of the token store's shards."""
    root = tmp_path_factory.mktemp("ray-shards")
    (root / "suite.yaml").write_text(SUITE, encoding="utf-8")
    done = run_cli("run", str(root / "suite.yaml"), *SAMPLE, "--results", str(root / "local"),
                   env={"HARNESS_HOME": str(root / "home")})
    assert done.returncode == 0, done.stderr
    shards = {record.label: record.cost["n_shards"] for _, record in ResultStore(root / "local").records()}
    assert shards["dense"] == 5 and shards["li"] >= 5  # 200 documents, 45 a shard; the token store
    assert f"document shards: {shards['li'] + 5} encoded, 0 reused" in done.stdout
    return root / "suite.yaml", root / "local", shards["li"]


def ray_command(suite: Path, results: Path, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "run", str(suite), *SAMPLE, "--results", str(results), "--executor", "ray", "--workers", "2", "--ray-address", address, *extra]


def test_shards_encoded_and_searched_on_two_ray_workers_give_the_local_run(cluster, local, tmp_path):
    suite, results, li_shards = local
    done = subprocess.run(ray_command(suite, tmp_path / "ray", cluster), cwd=REPO, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "HARNESS_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr
    assert f"document shards: {li_shards + 5} encoded, 0 reused" in done.stdout
    assert_same_results(tmp_path / "ray", results)


def _encoding_now(home: Path) -> list[int]:
    """Processes writing a token store under ``home`` now (a temporary store's vectors open)."""
    def writing(pid: int) -> bool:
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        return any(t.startswith(str(home / "tokens")) and "/.tmp-" in t and t.endswith("vectors.bin") for t in targets)

    return processes(writing)


def _finished(home: Path) -> dict[Path, int]:
    """Whole document shard stores under ``home`` (not the plan, nor stores derived from shards)
    and their folder's inode (a store encoded again is a new folder)."""
    found = {}
    for manifest in (home / "tokens").glob("*/*/manifest.json"):
        try:
            key = json.loads(manifest.read_text())["key"]
        except (OSError, ValueError, KeyError):
            continue
        if isinstance(key, dict) and key.get("role") == "document" and "shard" in key:
            found[manifest.parent] = manifest.parent.stat().st_ino
    return found


def test_a_worker_killed_while_encoding_a_shard_costs_only_that_shard(cluster, local, tmp_path):
    suite, results, encoded = local  # the token store's shards: only it runs here
    home = tmp_path / "home"
    run = subprocess.Popen(ray_command(suite, tmp_path / "ray", cluster, "-r", "li"), cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HARNESS_HOME": str(home)})
    killed, before = None, {}
    deadline = time.monotonic() + 600
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        if 0 < len(_finished(home)) < encoded:  # one shard done, others not: kill a worker writing one
            for pid in _encoding_now(home):
                before = _finished(home)
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.005)
    out, err = run.communicate(timeout=900)
    assert killed is not None, f"no worker was seen encoding a shard\n{out}\n{err}"
    assert run.returncode == 0, err
    # Each shard was encoded once: the killed one again on another worker, the finished ones never.
    assert f"document shards: {encoded} encoded, 0 reused" in out
    after = _finished(home)
    assert before and all(after[path] == inode for path, inode in before.items())
    assert len(after) == encoded
    ours, theirs = stored(tmp_path / "ray"), stored(results)
    assert list(ours) == ["li"] and ours["li"][0] == theirs["li"][0]
    assert_same_runs(ours["li"][1], theirs["li"][1])
