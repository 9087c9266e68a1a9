"""Whole-or-absent writes, and what a killed run leaves of them.

Every result folder and cache entry ``<dir>/<name>`` is assembled as ``<dir>/.tmp-<name>-<random>``
and renamed into place while its writer holds the lock of ``<name>`` (``harness.locks``). A forced
rewrite of a result renames the old folder to ``.trash-<name>-<random>`` first, then the new one
into place. A run killed on the way (SIGKILL, power loss) leaves those names, and its lock file;
``sweep`` removes them once their lock is free, and puts a ``.trash-`` folder back where a kill
between the two renames left its name empty (the old result returns; the forced run is redone
by running it again).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from pathlib import Path

from harness import locks
from harness.errors import HarnessError

log = logging.getLogger(__name__)

TMP, TRASH = ".tmp-", ".trash-"
_LEFTOVER = re.compile(r"^(?P<kind>\.tmp-|\.trash-)(?P<name>.+)-[0-9a-f]{8}$")


def temporary(final: str | Path, kind: str = TMP) -> Path:
    """A new name beside ``final`` for writing it (``TMP``) or for swapping it out (``TRASH``)."""
    final = Path(final)
    return final.parent / f"{kind}{final.name}-{uuid.uuid4().hex[:8]}"


def sweep(root: str | Path) -> list[Path]:
    """Remove the temporaries, swapped-out folders and lock files of writers that are gone, under
    ``root``; a live writer's are left alone. Returns the paths removed or put back. Folders that
    cannot be changed (read-only results) are left as they are."""
    root = Path(root)
    done: list[Path] = []
    if not root.is_dir():
        return done
    for folder, subfolders, files in os.walk(root):
        owners: dict[str, list[str]] = {}
        for entry in subfolders + files:
            match = _LEFTOVER.match(entry)
            name = match["name"] if match else entry[len(locks.PREFIX):] if entry.startswith(locks.PREFIX) else None
            if name:
                owners.setdefault(name, []).append(entry)
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]  # never inside a leftover
        for name, leftovers in owners.items():
            try:
                done += _clean(Path(folder), name, sorted(leftovers))
            except OSError as e:
                log.warning("could not clean up after a killed run in %s (%s); left as it is", folder, e)
    return done


def _clean(folder: Path, name: str, leftovers: list[str]) -> list[Path]:
    done = []
    final = folder / name
    with locks.try_hold(final) as free:
        if not free:
            return done  # its writer is alive
        for entry in leftovers:
            path = folder / entry
            if entry.startswith(locks.PREFIX):
                pass  # removed on leaving this block, by the release
            elif entry.startswith(TRASH) and not final.exists():
                os.replace(path, final)  # killed between a forced write's two renames: the old one returns
                log.warning("%s: put back the result that a killed --force run had swapped out", final)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            log.info("removed %s, left by a killed run", path)
            done.append(path)
    return done


def check_writable(folder: str | Path, what: str, fix: str) -> None:
    """Fail now, before any work, when ``folder`` cannot be made or written (also as root: a path
    under a regular file, a read-only file system). ``what`` names it, ``fix`` says what to do."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"{existing} is not writable (permissions or a read-only file system)"
    else:
        return
    raise HarnessError(f"{what} {folder} cannot be written: {reason}. Nothing was loaded or computed. {fix}")
