"""Content hashes for keys: canonical JSON of an object, and files read in blocks.

Every key in the harness (protocol cards, result keys, dataset and vector caches) is a hash of
canonical JSON, so the same content gives the same key on any machine and in any process.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_BLOCK = 1 << 24


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same content always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path, digest=None) -> str:
    """The file's SHA-256, read in 16 MiB blocks (weights and runs can be gigabytes); with
    ``digest``, the bytes are added to it instead and its hex digest is returned."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
