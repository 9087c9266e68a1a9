"""File locks per thing being written: a result folder, a cache entry, a unit of the grid.

The lock of ``<dir>/<name>`` is the file ``<dir>/.lock-<name>``, held with ``flock``, so the kernel
releases it when its process dies, SIGKILL included. Whoever writes ``<name>`` holds its lock while
its temporaries exist; that is how ``harness.atomic.sweep`` tells a killed run's leftovers (lock
free) from a live writer's (lock held), on this machine or on another that shares the folder.

A lock file is removed by the holder that releases it, so locks leave nothing behind. Removing it
is safe because a taker checks, once it holds the lock, that the path still names the file it
locked (else the holder before it removed that file, and it takes the lock again on the new one).
Holding is re-entrant within a thread; another thread of the same process waits like another
process does.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = ".lock-"
_held: dict[tuple[int, str], int] = {}  # (thread, lock file) -> how many times entered


def lock_path(target: str | Path) -> Path:
    target = Path(target)
    return target.parent / f"{PREFIX}{target.name}"


@contextmanager
def hold(target: str | Path, what: str | None = None) -> Iterator[None]:
    """Hold the lock of ``target`` (which need not exist yet), waiting for another holder; ``what``
    names the work in the message shown while waiting. Folders made for the lock file that are
    still empty on release are removed with it."""
    path = lock_path(target)
    key = (threading.get_ident(), str(path))
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    made = _missing_parents(path.parent)
    fd = _take(path, wait=False)
    if fd is None:
        log.warning("waiting for %s: %s is held by another process", what or target, path)
        fd = _take(path, wait=True)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        _give_back(fd, path)
        for folder in made:  # deepest first; one still in use is not empty
            try:
                folder.rmdir()
            except OSError:
                break


@contextmanager
def try_hold(target: str | Path) -> Iterator[bool]:
    """Hold the lock of ``target`` if nobody does, without waiting: True when held. False also
    when this thread holds it already: the caller is then the live writer, not a leftover."""
    path = lock_path(target)
    key = (threading.get_ident(), str(path))
    fd = None if key in _held else _take(path, wait=False, make_parents=False)
    if fd is None:
        yield False
        return
    _held[key] = 1
    try:
        yield True
    finally:
        del _held[key]
        _give_back(fd, path)


def _take(path: Path, wait: bool, make_parents: bool = True) -> int | None:
    while True:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            if not make_parents:
                raise
            continue  # a releasing holder removed the (empty) folder just now: make it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the previous holder removed this file on release; lock the current one


def _give_back(fd: int, path: Path) -> None:
    try:
        os.unlink(path)  # while still held: a waiter then finds the path gone and retries
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _missing_parents(folder: Path) -> list[Path]:
    """The folders of ``folder``'s path that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
