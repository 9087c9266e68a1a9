"""SIGKILL at random points of `harness run`, then the same command again: the same result, and
nothing left behind.

Each trial starts from empty caches and an empty results folder, so a kill can land in any phase
(reading the source into the Parquet cache, indexing, search, evaluation, writing the result).
The kill times are seeded and spread over the length of a clean run; which phase each one hit
is shown when the test fails.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from harness.results import MANIFEST, PER_QUERY, RECORD, RUN, load_per_query, load_record

from tests.conftest import SCIFACT_SUITE
from tests.faults.forked import Harness, run
from tests.faults.warm import SAMPLE

TRIALS, SEED = 10, 13
# The step each phase logs first (HARNESS_VERBOSE): a kill is also aimed just after each one, as
# search, evaluation and writing last a tenth of a second and random times seldom land there.
PHASES = {"loading": "reading ir_datasets", "indexing": ": indexing", "search": ": searching for",
          "evaluation": ": evaluating", "writing": ": writing the result"}
LEFTOVER_PREFIXES = (".tmp-", ".trash-", ".lock-")


def command(work: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    args = ("run", str(SCIFACT_SUITE), "-d", "scifact", "-r", "bm25", "--results", str(work / "results"), *SAMPLE)
    return args, {"HARNESS_HOME": str(work / "home"), "HARNESS_VERBOSE": "1"}


def leftovers(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.name.startswith(LEFTOVER_PREFIXES))


def result(work: Path) -> dict:
    """What a finished run leaves: where, the run file's bytes, every per-query score, the record's numbers."""
    (record_file,) = (work / "results").glob(f"*/*/*/{RECORD}")
    folder = record_file.parent
    record = load_record(folder)
    return {"folder": str(folder.relative_to(work)), "files": sorted(p.name for p in folder.iterdir()),
            "run": (folder / RUN).read_bytes(), "per_query": load_per_query(folder).to_dict("list"),
            "metrics": record.metrics, "n_queries": record.n_queries, "key": record.key}


def last_step(stderr: str) -> str:
    """The last step the killed run logged, to tell which phase the kill hit."""
    lines = [line for line in stderr.splitlines() if line.startswith("INFO harness")]
    return lines[-1].split(": ", 1)[-1][:60] if lines else "(starting)"


def test_killed_runs_run_again_to_the_same_result_and_leave_nothing_behind(offline, tmp_path):
    args, env = command(tmp_path / "reference")
    status, clean = run(*args, logs=tmp_path / "logs", env=env)
    assert status == 0, clean.stderr
    length = time.monotonic() - clean.started
    reference = result(tmp_path / "reference")
    assert reference["files"] == sorted([MANIFEST, RECORD, PER_QUERY, RUN]) and reference["n_queries"] == 50

    rng = random.Random(SEED)
    # One kill per slice of a clean run's first 90% (the rest is the process ending, after the
    # write), then one a few milliseconds after each phase starts.
    kills = [(None, 0.9 * length * (i + rng.random()) / TRIALS) for i in range(TRIALS)]
    kills += [(marker, rng.uniform(0.0, 0.02)) for marker in PHASES.values()]
    hit = []
    for i, (marker, delay) in enumerate(kills):
        work = tmp_path / f"trial-{i}"
        args, env = command(work)
        victim = Harness(*args, logs=tmp_path / "logs", env=env)
        start = victim.wait_for(marker) if marker else 0.0
        time.sleep(max(0.0, start + delay - (time.monotonic() - victim.started)))
        victim.signal()
        killed = victim.wait()
        hit.append((marker or f"after {delay:.2f} s", killed, last_step(victim.stderr)))
        status, again = run(*args, logs=tmp_path / "logs", env=env)
        assert status == 0, (hit[-1], again.stderr)
        assert leftovers(work) == [], hit[-1]
        assert result(work) == reference, hit[-1]
    print(f"clean run {length:.2f} s; kills (when, exit status, last step logged):", *hit, sep="\n")
    assert sum(killed == -9 for _, killed, _ in hit) >= len(kills) - 3, hit  # the kills landed inside runs
