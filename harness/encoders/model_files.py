"""What identifies a model read from a local folder: the content of the files that shape its vectors.

A hub snapshot is named by its commit, which never changes. A local folder can change in place
(retrained, its vocabulary edited), so its identity is the hash of every file transformers,
sentence-transformers and the checkpoint formats read: weights, tokenizer files (tokenizer.json,
vocab.txt, merges.txt, SentencePiece models), configs (config.json, tokenizer_config.json,
special_tokens_map.json, modules.json, Pooling and Dense configs, artifact.metadata) and model
code. No model library is imported: computing a result key imports neither torch nor transformers.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from harness.hashing import file_sha256 as _content_sha256
from harness.hashing import sha256
from harness.paths import harness_home

# Weights, then the text files that configure tokenizer, model and modules. Left out: README.md,
# ONNX/TensorFlow/Flax exports (read only when asked for by name), hidden folders (.git, .cache).
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model", ".py", ".metadata")
# Files smaller than this are hashed on every call: reading them costs less than keeping a record.
_RECORDED_FROM_BYTES = 1 << 20
# A file changed less than this long ago is hashed but not recorded: a second write within the
# file system's timestamp granularity (up to 2 s) could leave its state as recorded.
_SETTLED_NS = 2_000_000_000


def model_files(path: Path) -> list[str]:
    """The files of a model folder that are hashed, relative to it, sorted."""
    return sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*")
        if p.suffix in MODEL_FILE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def model_files_sha256(path: Path) -> str:
    """One hash of the names and contents of ``model_files(path)``."""
    return sha256({name: file_sha256(path / name) for name in model_files(path)})


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content. A large file's is hashed once per state of the file and kept
    under $HARNESS_HOME/file-hashes, keyed by its real path, size, inode, mtime_ns and ctime_ns.

    The trade-off: a re-run does not re-read gigabytes of weights, and a file rewritten in place
    is read again, because any write or replacement changes its ctime and mtime (ctime cannot be
    set back, not even by ``cp -p`` or ``rsync -t``; a replaced file also has another inode), and
    a state is recorded only once settled, so a later write cannot share its timestamps. Only a
    change made below the file system (the clock set back, or the disk edited) would go unseen."""
    real = path.resolve()
    stat = real.stat()
    settled = time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) > _SETTLED_NS
    if stat.st_size < _RECORDED_FROM_BYTES or not settled:
        return _content_sha256(real)
    state = sha256({"path": str(real), "size": stat.st_size, "inode": stat.st_ino,
                    "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns})
    record = harness_home() / "file-hashes" / state[:2] / state
    try:
        known = record.read_text().strip()
        if len(known) == 64:
            return known
    except OSError:  # absent or unreadable: hash the file again
        pass
    value = _content_sha256(real)
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{record.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(value)
    os.replace(tmp, record)  # whole or absent, never half-written
    return value
