"""Ctrl-C is counted even where a library swallows its KeyboardInterrupt."""

import os
import signal
import time
from pathlib import Path

from harness.interrupts import SigintWatch, message


def test_an_interrupt_a_library_swallowed_is_still_counted():
    before = signal.getsignal(signal.SIGINT)
    with SigintWatch() as watch:
        try:  # as llvmlite's destructors do, unwillingly
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
    assert watch.count == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_the_message_says_what_stopped_and_what_was_kept():
    assert message("beir/scifact/bm25", 2, 3, 1, Path("results"), stopped=True) == (
        "interrupted: beir/scifact/bm25 (unit 2 of 3) was stopped before its result was written; 1 unit finished, "
        "kept under results. Run the same command again to resume: finished units are skipped.")
    assert message("beir/scifact/bm25", 1, 1, 1, Path("results"), stopped=False).startswith(
        "interrupted: beir/scifact/bm25 (unit 1 of 1) finished before the interrupt took effect; 1 unit finished,")
