"""Ctrl-C during a grid of units: which unit it stopped, and what was kept.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be, and a library
can lose it there: numba compiles while ranx evaluates, and an interrupt raised inside one of
llvmlite's destructors is printed and dropped, so the run went on and exited 0. The handler here
also counts the signal, so the grid stops after the unit even when its exception was lost.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

EXIT_STATUS = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


class SigintWatch:
    """While entered (in the main thread), counts SIGINTs and raises KeyboardInterrupt for each."""

    def __init__(self):
        self.count = 0
        self._previous = None

    def __enter__(self) -> SigintWatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        self.count += 1
        raise KeyboardInterrupt


def message(unit_name: str, position: int, total: int, finished: int, results: Path, stopped: bool) -> str:
    """One line for a grid stopped by Ctrl-C at unit ``position`` (1-based) of ``total``."""
    what = (f"interrupted: {unit_name} (unit {position} of {total}) was stopped before its result was written"
            if stopped else
            f"interrupted: {unit_name} (unit {position} of {total}) finished before the interrupt took effect")
    kept = f"{finished} unit{'s' if finished != 1 else ''} finished"
    return (f"{what}; {kept}, kept under {results}. Run the same command again to resume: finished units "
            "are skipped.")
