"""Running a grid of units on an executor: the step each worker runs (``run_unit``), and the loop
that collects their ends (``run_grid``): a failure stops the grid, or with ``keep_going`` is
noted and the other units still run.

A unit that fails writes nothing a later run would read: results, datasets and token stores are
written under temporary names and renamed into place whole (see ``ResultStore.write``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError
from harness.executors import Executor, Finished, Gpus
from harness.pipeline import Outcome, Unit, execute


@dataclass(frozen=True)
class UnitRun:
    """What a worker sends back: the unit's outcome and what it did to the vector caches (the
    counters live in the worker's process, so they travel with the outcome)."""

    outcome: Outcome
    cache_counts: dict[str, int]
    shard_counts: dict[str, int] = field(default_factory=dict)


def run_unit(unit: Unit, results: str | Path, force: bool = False, steps: str = "local",
             workers: int | None = None) -> UnitRun:
    """One unit, its inner steps (document shards) on the executor ``steps`` (``workers`` at once):
    on Ray, tasks nested in the unit's own."""
    from harness.executors import running_steps
    from harness.index import cache, shards

    before, shards_before = Counter(cache.STATS), Counter(shards.STATS)
    with running_steps(steps, workers):
        outcome = execute(unit, results, force=force)
    return UnitRun(outcome, dict(Counter(cache.STATS) - before), dict(Counter(shards.STATS) - shards_before))


@dataclass
class GridReport:
    failures: list[Finished] = field(default_factory=list)
    cache_counts: Counter = field(default_factory=Counter)
    shard_counts: Counter = field(default_factory=Counter)  # of stores in more than one shard


def run_grid(units: list[Unit], executor: Executor, results: str | Path, force: bool = False,
             keep_going: bool = False, gpus: Gpus = 0, show: Callable[[Finished], None] = lambda f: None) -> GridReport:
    """Every unit on ``executor``; ``show`` is called as each ends. A unit asks for no GPU: the
    steps inside it that use one (encoding and searching document shards) ask for their own. Without ``keep_going`` the first
    failure cancels the units not yet run and is raised as it was raised on its worker."""
    report = GridReport()
    step = partial(run_unit, results=results, force=force, steps=executor.name,
                   workers=executor.workers if executor.name != "local" else None)
    for finished in executor.map(step, units, gpus=gpus):
        if finished.failed:
            if not keep_going:
                raise finished.error
            report.failures.append(finished)
        else:
            report.cache_counts.update(finished.value.cache_counts)
            report.shard_counts.update(finished.value.shard_counts)
        show(finished)
    return report


def failure_line(finished: Finished, suite: str) -> str:
    """``suite/dataset/retriever: the error's first line`` (its kind too, when it is not the harness's own)."""
    unit, error = finished.item, finished.error
    message = (str(error).strip().splitlines() or [""])[0]
    if not isinstance(error, HarnessError):
        message = f"{type(error).__name__}: {message}"
    return f"{suite}/{unit.dataset}/{unit.retriever}: {message}"
