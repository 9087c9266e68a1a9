"""Shared fixtures. Tests run offline: the real loading code (ir_datasets) is fed from writable
copies of the pre-seeded caches in ../shared (see ../shared/README.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))
SCIFACT_SUITE = REPO / "suites" / "beir.yaml"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    source = SHARED / "cache" / "ir_datasets"
    if not source.is_dir():
        pytest.fail(f"The pre-seeded caches are missing: expected {source} (see ../shared/README.md).")
    root = tmp_path_factory.mktemp("caches")
    shutil.copytree(source, root / "ir_datasets")
    return root


@pytest.fixture
def offline(cache_root, monkeypatch) -> Path:
    """Environment of an offline user whose caches hold BEIR SciFact. The harness's own Parquet
    cache is shared by the session's tests, so SciFact is parsed once."""
    monkeypatch.setenv("IR_DATASETS_HOME", str(cache_root / "ir_datasets"))
    monkeypatch.setenv("HARNESS_HOME", str(cache_root / "harness"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache_root


def run_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=600)
