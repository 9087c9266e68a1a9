"""A fault case as a user meets it: the command in a fresh process, its exit status, the first line
of what it says, no traceback, and the results folder and the harness's cache exactly as before."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.faults.state import assert_untouched, tree_state


def harness_home() -> Path:
    return Path(os.environ["HARNESS_HOME"])


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def expect_refusal(*args: str, first: str | re.Pattern, results: Path, status: int = 2, cwd: Path = REPO,
                   env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``harness *args``; it must exit with ``status``, print no traceback, say a first line that
    starts with ``first`` (or matches it, a compiled pattern), and change nothing under ``results``
    or HARNESS_HOME."""
    roots = (results, harness_home())
    before = tree_state(*roots)
    result = run_cli(*args, cwd=cwd, env=env)
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    line = first_line(result.stderr)
    matches = first.match(line) if isinstance(first, re.Pattern) else line.startswith(first)
    assert matches, f"first line {line!r} does not start with {first!r}"
    assert_untouched(before, *roots)
    return result


def seeded_results(root: Path) -> Path:
    """A results folder that already holds a result, so that "nothing changed" can fail."""
    folder = root / "results" / "faults" / "scifact" / "bm25-000000000000"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text('{"kept": true}\n', encoding="utf-8")
    return root / "results"
