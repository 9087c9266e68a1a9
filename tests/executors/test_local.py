"""The local executor and the grid loop: a failing unit stops the grid (exit 2, as any harness
error), or with --keep-going is listed at the end (exit 1) while the others still run; a failed
unit leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from harness.executors import Finished, get_executor, threads_per_worker
from harness.executors.local import LocalExecutor

from tests.conftest import run_cli
from tests.executors.grid_world import SAMPLE, leftovers, stored, write_suite


def halve(x: int) -> float:
    if x < 0:
        raise ValueError(f"{x} is negative")
    return x / 2


def test_local_map_gives_values_and_errors_in_order():
    ends = list(LocalExecutor().map(halve, [4, -1, 6]))
    assert [(f.item, f.value, f.failed) for f in ends] == [(4, 2.0, False), (-1, None, True), (6, 3.0, False)]
    assert str(ends[1].error) == "-1 is negative" and "ValueError: -1 is negative" in ends[1].traceback
    assert isinstance(ends[0], Finished)


def test_threads_share_the_cores_among_workers():
    assert [threads_per_worker(16, w) for w in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]


def test_encoders_take_the_threads_their_executor_gave(monkeypatch):
    import os

    from harness.executors import default_threads

    monkeypatch.setenv("HARNESS_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("HARNESS_THREADS", "0")  # nonsense: every core, as without it
    assert default_threads() == (os.cpu_count() or 1)


def test_options_that_only_ray_takes_are_refused_for_local():
    for kwargs, start in (({"workers": 2}, "--workers 2: the local executor runs one unit at a time"),
                          ({"address": "head:6379"}, "--ray-address joins a Ray cluster")):
        try:
            get_executor("local", **kwargs)
        except Exception as e:
            assert str(e).startswith(start)
        else:
            raise AssertionError(f"{kwargs} was accepted")


def test_first_failure_stops_the_grid_and_keep_going_runs_the_rest(offline, tmp_path):
    suite = write_suite(tmp_path)
    # --quiet: when this test runs first, reading the dataset would print progress before the error.
    stopped = run_cli("run", str(suite), "-r", "nan", "-r", "bm25", "--results", str(tmp_path / "stop"), "--quiet",
                      *SAMPLE)
    assert stopped.returncode == 2
    assert stopped.stderr.startswith("error: Retriever 'nan' on dataset 'scifact' of suite 'beir' gave ")
    assert not (tmp_path / "stop").exists() or stored(tmp_path / "stop") == {}  # bm25 came after: not run

    kept = run_cli("run", str(suite), "-r", "nan", "-r", "bm25", "--results", str(tmp_path / "kept"), "--keep-going",
                   *SAMPLE)
    assert kept.returncode == 1, kept.stderr
    lines = kept.stdout.splitlines()
    assert lines[0].split()[:3] == ["failed", "scifact", "nan"]
    assert lines[1].split()[:3] == ["done", "scifact", "bm25"]
    assert lines[-2:] == ["1 of 2 units failed:", "  beir/scifact/nan: " + lines[0].split(None, 3)[3]]
    assert list(stored(tmp_path / "kept")) == ["bm25"]
    assert leftovers(tmp_path / "kept") == []


def test_harness_errors_survive_the_trip_back_from_a_worker():
    # A unit's error is pickled on the worker and raised again on the command's side, kind and fields intact.
    import pickle

    from harness.errors import CorruptFileError, ParameterError

    corrupt = pickle.loads(pickle.dumps(CorruptFileError("store/vectors.bin", "is 3 bytes, its manifest says 8")))
    assert (type(corrupt), corrupt.path, corrupt.reason, str(corrupt)) == (
        CorruptFileError, "store/vectors.bin", "is 3 bytes, its manifest says 8",
        "store/vectors.bin is 3 bytes, its manifest says 8")
    from harness.results import DamagedResultError

    folder = Path("results/beir/scifact/bm25-0123456789ab")
    damaged = DamagedResultError(folder, CorruptFileError(folder / "record.json", "is 3 bytes, its manifest says 8"))
    again = pickle.loads(pickle.dumps(damaged))
    assert (type(again), str(again), again.folder) == (DamagedResultError, str(damaged), folder)
    param = pickle.loads(pickle.dumps(ParameterError("dim=999 is outside 1..384", param="dim")))
    assert (type(param), str(param), param.param) == (ParameterError, "dim=999 is outside 1..384", "dim")
