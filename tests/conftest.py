"""Shared fixtures. Tests run offline: the real loading code (ir_datasets, transformers) is fed
from writable copies of the pre-seeded caches in ../shared (see ../shared/README.md).

The copies are made once per session, before any test imports ir_datasets or huggingface_hub,
because both read their cache variables when first imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))
SCIFACT_SUITE = REPO / "suites" / "beir.yaml"
_ROOT: Path | None = None


def pytest_configure(config):
    global _ROOT
    caches = SHARED / "cache"
    if not (caches / "ir_datasets").is_dir() or not (caches / "huggingface").is_dir():
        raise pytest.UsageError(f"The pre-seeded caches are missing: expected {caches}/ir_datasets and "
                                f"{caches}/huggingface (see ../shared/README.md), or set HARNESS_SHARED.")
    _ROOT = Path(tempfile.mkdtemp(prefix="harness-tests-"))
    shutil.copytree(caches / "ir_datasets", _ROOT / "ir_datasets")
    shutil.copytree(caches / "huggingface", _ROOT / "huggingface")
    os.environ.update({
        "IR_DATASETS_HOME": str(_ROOT / "ir_datasets"),
        "HF_HOME": str(_ROOT / "huggingface"),
        "HF_HUB_OFFLINE": "1",
        "HARNESS_HOME": str(_ROOT / "harness"),
    })


def pytest_unconfigure(config):
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_root() -> Path:
    return _ROOT


@pytest.fixture
def offline(cache_root) -> Path:
    """Environment of an offline user whose caches hold BEIR SciFact and all-MiniLM-L6-v2; the
    harness's own cache is shared by the session's tests, so SciFact is parsed once."""
    return cache_root


def run_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=900)
