"""Ctrl-C, two runs at once, a results folder that cannot be written, what killed runs leave.

Each case runs `harness` as its own process (forked warm, see ``tests.faults.forked``), checks
the exit status and the first line of what it says, and what the results folder and the caches
hold afterwards.
"""

from __future__ import annotations

import re
import shutil
import signal
import time

from harness import locks

from tests.conftest import SCIFACT_SUITE, run_cli
from tests.faults.forked import Harness, run
from tests.faults.state import assert_untouched, tree_state
from tests.faults.test_kill import leftovers
from tests.faults.warm import SAMPLE

TWO_BM25 = """name: faults
defaults:
  language: en
  split: test
  max_length: {query: 32, document: 300}
  metrics: [ndcg@10, recall@100]
datasets:
  scifact:
    source: {kind: ir_datasets, id: beir/scifact/test}
retrievers:
  bm25: {class: bm25, params: {k1: 0.9, b: 0.4}}
  bm25-b: {class: bm25, params: {k1: 1.2, b: 0.75}}
"""


def setup(tmp_path):
    suite = tmp_path / "faults.yaml"
    suite.write_text(TWO_BM25)
    return suite, tmp_path / "results", {"HARNESS_HOME": str(tmp_path / "home")}


def first_line(text: str, start: str) -> str:
    return next((line for line in text.splitlines() if line.startswith(start)), f"(no line starting {start!r})")


def results_in(results):
    return sorted(str(p.parent.relative_to(results)) for p in results.glob("*/*/*/record.json"))


def test_ctrl_c_names_the_unit_keeps_finished_ones_and_exits_130(offline, tmp_path):
    suite, results, env = setup(tmp_path)
    status, _ = run("run", str(suite), "-r", "bm25", "--results", str(tmp_path / "warm"), *SAMPLE,
                    logs=tmp_path / "logs", env=env)  # the data cache is filled before the snapshot
    assert status == 0
    caches = tree_state(tmp_path / "home")
    both = ("run", str(suite), "-r", "bm25", "-r", "bm25-b", "--results", str(results), *SAMPLE)
    grid = Harness(*both, logs=tmp_path / "logs", env={**env, "HARNESS_VERBOSE": "1"})
    grid.wait_for("faults/scifact/bm25-b: indexing")
    grid.signal(signal.SIGINT)
    assert grid.wait() == 130, grid.stderr
    assert first_line(grid.stderr, "interrupted") == (
        "interrupted: faults/scifact/bm25-b (unit 2 of 2) was stopped before its result was written; 1 unit "
        f"finished, kept under {results}. Run the same command again to resume: finished units are skipped.")
    assert "Traceback" not in grid.stderr
    (kept,) = results_in(results)
    assert re.fullmatch(r"faults/scifact/bm25-[0-9a-f]{12}", kept), kept  # bm25's, not bm25-b's
    assert grid.stdout.split()[:3] == ["done", "scifact", "bm25"]
    assert leftovers(tmp_path) == []
    assert_untouched(caches, tmp_path / "home")

    status, again = run(*both, logs=tmp_path / "logs", env=env)
    assert status == 0, again.stderr
    assert [line.split()[:3] for line in again.stdout.splitlines()[:2]] == [
        ["skipped", "scifact", "bm25"], ["done", "scifact", "bm25-b"]]


def test_two_identical_runs_at_once_leave_one_result_and_the_second_waits_then_skips(offline, tmp_path):
    suite, results, env = setup(tmp_path)
    same = ("run", str(suite), "-r", "bm25", "--results", str(results), *SAMPLE)
    first_run = Harness(*same, logs=tmp_path / "logs", env=env)
    turn = results / "faults" / "scifact" / ".lock-bm25-unit"
    while not turn.exists():  # the first holds the unit's lock from its start to its end
        assert first_run.running, first_run.stderr
        time.sleep(0.005)
    second_run = Harness(*same, logs=tmp_path / "logs", env=env)
    assert (first_run.wait(), second_run.wait()) == (0, 0), (first_run.stderr, second_run.stderr)
    assert first_line(second_run.stderr, "WARNING") == (
        f"WARNING harness.locks: waiting for another run of faults/scifact/bm25 into {results}: {turn} is "
        "held by another process")
    assert first_run.stdout.split()[0] == "done" and second_run.stdout.split()[0] == "skipped"
    assert first_run.stdout.split()[-1] == second_run.stdout.split()[-1]  # the same folder
    assert len(results_in(results)) == 1
    assert len(list((tmp_path / "home" / "datasets").glob("*/*/*/manifest.json"))) == 1
    assert leftovers(tmp_path) == []


def test_a_results_folder_that_cannot_be_written_fails_before_any_data_is_loaded(tmp_path):
    occupied = tmp_path / "occupied"
    occupied.write_text("a file where the results folder should go\n")
    home = tmp_path / "home"
    before = tree_state(tmp_path)
    result = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--results", str(occupied / "results"),
                     env={"HARNESS_HOME": str(home)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"error: The results folder {occupied / 'results'} cannot be written: {occupied} is a file, not a folder. "
        "Nothing was loaded or computed. Give --results a folder that can be created and written.")
    assert "Traceback" not in result.stderr
    assert not home.exists()  # not even the data cache was made
    assert_untouched(before, tmp_path)


def test_a_cache_folder_that_cannot_be_written_fails_before_any_data_is_loaded(tmp_path):
    occupied = tmp_path / "occupied"
    occupied.write_text("a file where HARNESS_HOME should go\n")
    before = tree_state(tmp_path)
    result = run_cli("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--results", str(tmp_path / "results"),
                     env={"HARNESS_HOME": str(occupied / "home")})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"error: The harness's cache folder (HARNESS_HOME) {occupied / 'home'} cannot be written: {occupied} is a "
        "file, not a folder. Nothing was loaded or computed. Set HARNESS_HOME to a folder that can be created "
        "and written.")
    assert not (tmp_path / "results").exists()
    assert_untouched(before, tmp_path)


def test_what_killed_runs_left_is_removed_but_a_live_writers_temporaries_stay(offline, tmp_path):
    suite, results, env = setup(tmp_path)
    same = ("run", str(suite), "-r", "bm25", "--results", str(results), *SAMPLE)
    assert run(*same, logs=tmp_path / "logs", env=env)[0] == 0
    kept = tree_state(results, tmp_path / "home")
    scifact, home = results / "faults" / "scifact", tmp_path / "home"
    (result_folder,) = [p for p in scifact.iterdir() if not p.name.startswith(".")]
    orphans = [scifact / f".tmp-{result_folder.name}-0123abcd", scifact / ".lock-bm25-unit",
               home / "tokens" / "ab" / f".tmp-ab{'0' * 62}-89abcdef", home / "model-facts" / ".tmp-f00d.json-00ff00ff"]
    (entry,) = (home / "datasets").glob("*/*/*/manifest.json")
    orphans.append(entry.parent.parent / f".tmp-{entry.parent.name}-deadbeef")
    for path in orphans:
        if path.name.startswith(".lock-") or path.name.endswith("json-00ff00ff"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        else:
            shutil.copytree(entry.parent if "datasets" in str(path) else result_folder, path)
    live = scifact / "live"
    with locks.hold(live):  # this process writes `live`: its temporary is not a leftover
        (scifact / ".tmp-live-76543210").mkdir()
        status, again = run(*same, logs=tmp_path / "logs", env=env)
        assert status == 0, again.stderr
        assert again.stdout.split()[0] == "skipped"
        assert leftovers(tmp_path) == ["results/faults/scifact/.lock-live", "results/faults/scifact/.tmp-live-76543210"]
    assert not locks.lock_path(live).exists()  # released, and removed with it
    assert_untouched(kept, results, home)  # the result and the caches, as they were


def test_a_kill_between_the_renames_of_force_does_not_hide_the_result(offline, tmp_path):
    suite, results, env = setup(tmp_path)
    same = ("run", str(suite), "-r", "bm25", "--results", str(results), *SAMPLE)
    assert run(*same, logs=tmp_path / "logs", env=env)[0] == 0
    before = tree_state(results)
    (folder,) = [p for p in (results / "faults" / "scifact").iterdir()]
    for show in (("report", str(results), "-f", "markdown", "--no-plots", "--out", str(tmp_path / "reports")), same):
        # What `--force` leaves when killed after its first rename (the old result out of the
        # way) and before its second (the new one into place), with the writer's lock file.
        shutil.copytree(folder, folder.parent / f".tmp-{folder.name}-0badc0de")
        folder.rename(folder.parent / f".trash-{folder.name}-1badc0de")
        locks.lock_path(folder).write_text("")
        status, shown = run(*show, logs=tmp_path / "logs", env=env)
        assert status == 0, shown.stderr
        assert_untouched(before, results)  # the old result is back, and nothing else is there
        if show[0] == "report":
            assert "| bm25 |" in (tmp_path / "reports" / "results.md").read_text()
        else:
            assert shown.stdout.split()[0] == "skipped"
        assert first_line(shown.stderr, "WARNING") == (
            f"WARNING harness.atomic: {folder}: put back the result that a killed --force run had swapped out")
