"""Executors: how a list of independent steps runs. ``map(fn, items)`` yields one ``Finished`` per
item, as each ends, with its value or the exception it raised; the caller decides whether a
failure stops the rest (``close()`` cancels what has not run).

``local`` is a loop in this process. ``ray`` maps the same functions as Ray tasks; it lives in
``harness/executors/ray.py``, the only module that imports Ray, so the local executor never needs
it. Any picklable module-level function over picklable items can be mapped: the grid's units
(``harness.grid.run_unit``), and the steps inside a unit (encoding or searching a document shard,
harness/index/shards.py), which run on ``steps()``: the executor the unit was given
(``running_steps``; on Ray, nested tasks of the unit's task), else a loop in this process.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, Union

from harness.errors import ParameterError

EXECUTORS = ("local", "ray")
THREADS_ENV = "HARNESS_THREADS"  # torch threads per worker; read by the encoders (threads_per_worker)
Gpus = Union[float, Callable[[Any], float]]


@dataclass
class Finished:
    """One item's end: its value, or the exception it raised (``error``) with its traceback text."""

    item: Any
    value: Any = None
    error: BaseException | None = None
    traceback: str = ""

    @property
    def failed(self) -> bool:
        return self.error is not None


class Executor(Protocol):
    name: str
    workers: int

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], gpus: Gpus = 0) -> Iterator[Finished]:
        """``fn(item)`` for each item, yielded as each ends (in any order). ``gpus``: what each call
        needs of a GPU (a number, or a function of its item), where the executor places work on GPUs."""

    def close(self) -> None:
        """Cancel what has not run and release the workers."""


def get_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``name``; ``workers`` caps how many items run at once (default: one per
    core here, or every CPU of a joined cluster), ``address`` joins a running Ray cluster."""
    if name not in EXECUTORS:
        raise ParameterError(f"--executor {name!r} is not an executor; choose one of: {', '.join(EXECUTORS)}.")
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers {workers} is below 1; give how many units may run at once (e.g. 2).")
    if name == "local":
        if address is not None:
            raise ParameterError("--ray-address joins a Ray cluster, which only `--executor ray` uses; "
                                 "add `--executor ray`, or drop --ray-address.")
        if workers is not None and workers > 1:
            raise ParameterError(f"--workers {workers}: the local executor runs one unit at a time; add "
                                 "`--executor ray` to run units side by side, or drop --workers.")
        from harness.executors.local import LocalExecutor

        return LocalExecutor()
    from harness.executors.ray import RayExecutor  # raises MissingDependencyError without Ray

    return RayExecutor(workers=workers, address=address)


def threads_per_worker(cores: int | None, workers: int) -> int:
    """The cores a worker's torch may use: the machine's shared out, so that workers on one node
    do not each start a thread per core and fight for them."""
    return max(1, (cores or 1) // max(1, workers))


def default_threads() -> int:
    """Torch threads for this process: what the executor gave it (``HARNESS_THREADS``), else every core."""
    value = os.environ.get(THREADS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


_steps: list[Executor] = []  # the executors steps run on, innermost last


def steps() -> Executor:
    """The executor for the steps inside the running unit: the one ``running_steps`` gave, else a
    loop here (the default, which imports no engine)."""
    if _steps:
        return _steps[-1]
    from harness.executors.local import LocalExecutor

    return LocalExecutor()


@contextmanager
def running_steps(name: str = "local", workers: int | None = None, address: str | None = None):
    """Within this block, ``steps()`` maps on the executor ``name`` (see ``get_executor``)."""
    executor = get_executor(name, None if name == "local" else workers, address)
    _steps.append(executor)
    try:
        yield executor
    finally:
        _steps.pop()
        executor.close()
