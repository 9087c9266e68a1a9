"""Progress of the steps that can take long: a rich bar with the rate and the time left on a
terminal, a line every ~10% when stderr is not one (a log, CI), nothing with ``--quiet``.

Steps are counted where they loop (``counted``): encoding documents, BM25 search, k-means
iterations, latency sampling, reading a source's rows. Bars of one process share one live
display, so a step inside another (a search inside latency sampling) adds a line under it rather
than fighting it. Libraries' own bars (tqdm: ir_datasets, transformers, huggingface_hub) are
turned off by ``quiet_libraries`` so that they do not interleave with these.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
QUIET_ENV = "HARNESS_QUIET"
_live = None  # the shared rich Progress while any bar is open
_open = 0


def set_quiet(quiet: bool) -> None:
    """``--quiet``: no bars and no lines, here and in worker processes (which read the variable)."""
    if quiet:
        os.environ[QUIET_ENV] = "1"


def quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def quiet_libraries() -> None:
    """Turn off the libraries' own tqdm bars (a user's explicit setting wins)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def counted(items: Iterable[T], what: str, total: int, unit: str,
            size: Callable[[T], int] = lambda item: 1) -> Iterator[T]:
    """``items``, shown as a step of ``total`` ``unit``s; an item counts ``size(item)`` once the
    caller has finished with it (when it asks for the next)."""
    if quiet() or total <= 1:  # a one-query search (latency sampling times many) is not a step
        yield from items
        return
    shown = _Bar(what, total, unit) if sys.stderr.isatty() else _Lines(what, total, unit)
    try:
        pending = 0
        for item in items:
            shown.advance(pending)
            pending = size(item)
            yield item
        shown.advance(pending)
    finally:
        shown.close()


class _Lines:
    """``what: 40% (2,073/5,183 docs, 512 docs/s, 6 s left)`` each time another tenth is done."""

    def __init__(self, what: str, total: int, unit: str):
        self.what, self.total, self.unit = what, total, unit
        self.done, self.tenth, self.start = 0, 0, time.perf_counter()

    def advance(self, n: int) -> None:
        self.done += n
        tenth = min(10, self.done * 10 // self.total)
        if tenth <= self.tenth:
            return
        self.tenth = tenth
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        print(f"{self.what}: {tenth * 10}% ({self.done:,}/{self.total:,} {self.unit}, {rate:,.1f} {self.unit}/s, "
              f"{left:.0f} s left)", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, what: str, total: int, unit: str):
        global _live, _open
        if _live is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

            _live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[unit]}"), TaskProgressColumn(),
                             TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[left]}"),
                             console=Console(stderr=True), transient=True)
            _live.start()
        _open += 1
        self.unit, self.start = unit, time.perf_counter()
        self.total = total
        self.task = _live.add_task(what, total=total, unit=unit, rate="", left="-:--:--")

    def advance(self, n: int) -> None:
        done = _live.tasks[[t.id for t in _live.tasks].index(self.task)].completed + n
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        # Time left from the mean rate since the start, as the plain lines say it: rich's own
        # estimate looks at the last 30 s only, and steps that advance once a chunk (encoding a
        # few hundred documents at a time) would show none.
        left = int((self.total - done) / rate) if rate > 0 else None
        _live.update(self.task, advance=n, rate=f"{rate:,.1f} {self.unit}/s",
                     left="-:--:--" if left is None else f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}")

    def close(self) -> None:
        global _live, _open
        _live.remove_task(self.task)
        _open -= 1
        if _open == 0:
            _live.stop()
            _live = None
