"""Builders of a Hugging Face hub cache, laid out as huggingface_hub lays it out, so the real
resolving code (``hf_hub_download`` offline) reads the files exactly as it would after a download:

    <HF_HOME>/hub/datasets--<owner>--<name>/blobs/<sha256>
    <HF_HOME>/hub/datasets--<owner>--<name>/snapshots/<commit>/<path in repo>  -> ../../blobs/<sha256>
    <HF_HOME>/hub/datasets--<owner>--<name>/refs/main                          (the commit)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]


def offline_hub(monkeypatch, root: Path) -> Path:
    """An empty HF_HOME of an offline user (``root/hf``, returned) and a fresh harness cache
    (``root/harness``). huggingface_hub is imported first: it reads its cache variables once, at
    import, and the session's later tests must still find the model weights in the session's cache."""
    import huggingface_hub.constants  # noqa: F401  (a lazy submodule: importing the package reads nothing)

    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HARNESS_HOME", str(root / "harness"))
    return root / "hf"


def put(hf_home: Path, repo: str, commit: str, files: dict[str, bytes]) -> Path:
    """Store ``files`` (path in repo -> content) as the cache holds repo ``repo`` at ``commit``."""
    root = hf_home / "hub" / ("datasets--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for name, content in files.items():
        blob = root / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        pointer = root / "snapshots" / commit / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    return root


def parquet(rows: list[dict], schema: pa.Schema | None = None) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def jsonl(rows: list[dict], compress: bool = False) -> bytes:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    return gzip.compress(data) if compress else data


def suite_without_expected(name: str, folder: Path) -> Path:
    """The shipped suite ``suites/<name>.yaml`` with its `expected` counts removed (they are the
    full datasets' counts) and nothing else changed: same sources, pins, mappings and protocol."""
    data = yaml.safe_load((REPO_ROOT / "suites" / f"{name}.yaml").read_text(encoding="utf-8"))
    (data.get("defaults") or {}).pop("expected", None)
    for entry in data["datasets"].values():
        entry.pop("expected", None)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
