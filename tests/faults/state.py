"""What a fault must not touch: the files under the results folder and the caches, by content.

A fault case snapshots the folders before the bad command and asserts afterwards that nothing
was added, removed or changed (temporary names included: a crash that leaves ``.tmp-`` folders
behind fails too).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_state(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` (path -> SHA-256 of its bytes); absent roots hold nothing."""
    state: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """Added, removed and changed paths between two snapshots (empty lists: untouched)."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(p for p in before.keys() & after.keys() if before[p] != after[p]),
    }


def assert_untouched(before: dict[str, str], *roots: Path) -> None:
    diff = changes(before, tree_state(*roots))
    assert diff == {"added": [], "removed": [], "changed": []}, diff
