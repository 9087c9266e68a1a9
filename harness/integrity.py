"""Checksums of stored files: recorded in a manifest when an artefact is written, verified when it
is opened.

Every artefact the harness keeps (token and compressed stores, dataset Parquet caches, result
folders, the dense retriever's model facts) is a folder or file with a JSON manifest. The writer
calls ``write_manifest`` last: it records each file's size and one CRC-32 per 64 MiB block under
``files``, then seals the whole object with the CRC-32 of its canonical JSON (``sealed_crc32``), so
a manifest that was cut short or edited fails too. ``read_manifest`` checks the seal, that every
required file is listed, and every listed file's bytes, and raises ``CorruptFileError`` naming the
file and the first thing wrong (the size, or which block). A manifest without a seal was written
before checksums were recorded: it cannot vouch for its files, so it counts as damaged as well.

CRC-32 (zlib, in the standard library) detects any burst error up to 32 bits and random damage but
for one chance in 2^32 per block; it is no defence against someone who edits files on purpose, and
needs none. It runs at about 3 GB/s on one core, several times the speed at which the files are
read back (bench/integrity.py measures both).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.errors import CorruptFileError
from harness.hashing import canonical_json

BLOCK_BYTES = 64 << 20
FILES, SEAL = "files", "sealed_crc32"


def file_checksums(path: str | Path, block_bytes: int = BLOCK_BYTES) -> dict[str, Any]:
    """``{"bytes": size, "block_bytes": B, "crc32": [one per block]}`` of the file at ``path``."""
    return {"bytes": Path(path).stat().st_size, "block_bytes": block_bytes, "crc32": list(_block_crcs(path, block_bytes))}


def verify_file(path: str | Path, entry: dict[str, Any]) -> None:
    """Raise ``CorruptFileError`` unless the file has the size and block checksums of ``entry``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorruptFileError(path, "is missing") from None
    if size != entry["bytes"]:
        raise CorruptFileError(path, f"is {size:,} bytes, its manifest says {entry['bytes']:,}")
    block = entry["block_bytes"]
    for i, (found, recorded) in enumerate(zip(_block_crcs(path, block), entry["crc32"], strict=True)):
        if found != recorded:
            end = min(size, (i + 1) * block) - 1
            raise CorruptFileError(path, f"block {i} of {len(entry['crc32'])} (bytes {i * block:,}-{end:,}) does "
                                         "not match its checksum")


def seal(obj: dict[str, Any]) -> str:
    """``obj`` as indented JSON text, with the CRC-32 of its canonical JSON under ``sealed_crc32``."""
    body = {k: v for k, v in obj.items() if k != SEAL}
    return json.dumps({**body, SEAL: _crc(body)}, indent=2, sort_keys=True, allow_nan=False)


def unseal(text: str, path: str | Path) -> dict[str, Any]:
    """The object ``seal`` wrote, or ``CorruptFileError`` (naming ``path``) when the text is not it."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise CorruptFileError(path, "is not JSON (cut short or overwritten)") from None
    if not isinstance(obj, dict) or SEAL not in obj:
        raise CorruptFileError(path, "has no checksum (written before checksums were recorded)")
    body = {k: v for k, v in obj.items() if k != SEAL}
    if obj[SEAL] != _crc(body):
        raise CorruptFileError(path, "does not match its own checksum (edited or overwritten)")
    return body


def write_manifest(path: str | Path, manifest: dict[str, Any], files: Iterable[str]) -> dict[str, Any]:
    """Write ``manifest`` sealed, with the checksums of ``files`` (names in the manifest's folder)
    under ``files``; returns what was written, seal aside. Call it after the files are complete."""
    path = Path(path)
    full = {**manifest, FILES: {name: file_checksums(path.parent / name) for name in sorted(files)}}
    path.write_text(seal(full), encoding="utf-8")
    return full


def read_manifest(path: str | Path, required: Iterable[str] = ()) -> dict[str, Any]:
    """The manifest at ``path`` after checking its seal, that it lists each of ``required``, and
    every file it lists; ``CorruptFileError`` names the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorruptFileError(path, "is missing (the folder was never finished, or predates checksums)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptFileError(path, f"cannot be read ({type(e).__name__})") from None
    manifest = unseal(text, path)
    listed = manifest.get(FILES)
    if not isinstance(listed, dict):
        raise CorruptFileError(path, "lists no file checksums")
    for name in required:
        if name not in listed:
            raise CorruptFileError(path, f"lists no checksum for {name}")
    for name, entry in listed.items():
        verify_file(path.parent / name, entry)
    return manifest


def _crc(obj: dict[str, Any]) -> int:
    return zlib.crc32(canonical_json(obj).encode("utf-8"))


def _block_crcs(path: str | Path, block_bytes: int):
    """CRC-32 of each ``block_bytes`` block of the file, read into one reused buffer (the pages stay
    in the OS cache, not in this process's memory)."""
    with open(path, "rb", buffering=0) as f:
        buffer = memoryview(bytearray(max(1, min(block_bytes, os.fstat(f.fileno()).st_size))))
        while True:
            filled = 0
            while filled < len(buffer):
                n = f.readinto(buffer[filled:])
                if not n:
                    break
                filled += n
            if not filled:
                return
            yield zlib.crc32(buffer[:filled])
            if filled < len(buffer):
                return
