"""What checksum verification costs, against reading the store and against searching it.

    .venv/bin/python bench/integrity.py [--tokens 1307434] [--dim 384] [--queries 32] [--dir /var/tmp]
                                        # writes bench/results/integrity.json

A synthetic float16 token store of SciFact's size (1,307,434 tokens at d384: 1.0 GB, random unit
vectors, 5,183 documents) is written through ``TokenStoreWriter`` (whose ``finish`` reads the file
back to checksum it), then timed, best of ``--repeat``:

- ``read``: the vector file read front to back in 64 MiB blocks, pages in the OS cache (what the
  MaxSim kernel's chunk reader does once per search);
- ``read, cold``: the same after ``posix_fadvise(DONTNEED)`` drops this file's pages (the disk);
- ``verify``: ``TokenStore.load`` (reads both files and checks every block's CRC-32), warm and cold;
- ``crc32 alone``: zlib's CRC-32 over the bytes already in memory (and xxhash's xxh3_64 for
  comparison when it is installed; it is not a dependency);
- ``search``: one exact MaxSim search of ``--queries`` random 32-token queries over the store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_json  # noqa: E402
from harness.index.token_store import VECTORS, TokenStore, TokenStoreWriter  # noqa: E402

BLOCK = 64 << 20


def write_store(path: Path, n_tokens: int, n_docs: int, dim: int, seed: int = 0) -> float:
    """A store of ``n_docs`` documents of about equal length; returns finish()'s seconds (checksums)."""
    rng = np.random.default_rng(seed)
    counts = np.full(n_docs, n_tokens // n_docs, dtype=np.int64)
    counts[: n_tokens - counts.sum()] += 1
    writer = TokenStoreWriter(path, counts, dim, dtype="float16")
    offsets = writer.offsets
    step = 256
    for first in range(0, n_docs, step):
        stop = min(n_docs, first + step)
        rows = rng.standard_normal((int(offsets[stop] - offsets[first]), dim), dtype=np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        writer.write_span(first, stop, rows)
    t = time.perf_counter()
    writer.finish()
    return time.perf_counter() - t


def drop_from_page_cache(path: Path) -> bool:
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def read_through(path: Path) -> None:
    buffer = memoryview(bytearray(BLOCK))
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


def best(fn, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_307_434)
    parser.add_argument("--documents", type=int, default=5_183)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=32, help="queries of the reference search (0 skips it)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the temporary store goes (default: the system's)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="integrity-bench-", dir=args.dir))
    try:
        path = root / "store"
        checksum_at_write_s = write_store(path, args.tokens, args.documents, args.dim)
        vectors = path / VECTORS
        size = vectors.stat().st_size
        cold = lambda: drop_from_page_cache(vectors) and drop_from_page_cache(path / "offsets.npy")  # noqa: E731
        read_through(vectors)  # warm
        rows = [
            {"step": "checksum at write (finish)", "seconds": checksum_at_write_s},
            {"step": "read", "seconds": best(lambda: read_through(vectors), args.repeat)},
            {"step": "verify (TokenStore.load)", "seconds": best(lambda: TokenStore.load(path), args.repeat)},
        ]
        if cold():
            rows += [{"step": "read, cold", "seconds": best(lambda: read_through(vectors), args.repeat, cold)},
                     {"step": "verify, cold", "seconds": best(lambda: TokenStore.load(path), args.repeat, cold)}]
        data = vectors.read_bytes()
        rows.append({"step": "crc32 alone (zlib)", "seconds": best(lambda: zlib.crc32(data), args.repeat)})
        try:
            import xxhash

            rows.append({"step": "xxh3_64 alone (xxhash)",
                         "seconds": best(lambda: xxhash.xxh3_64_intdigest(data), args.repeat)})
        except ImportError:
            pass
        data = None  # free the copy before the search part (a rebinding: the lambdas above are done with it)
        if args.queries:
            from harness.kernels.maxsim import maxsim_search

            store = TokenStore.load(path)
            rng = np.random.default_rng(1)
            q = rng.standard_normal((args.queries, 32, args.dim), dtype=np.float32)
            q /= np.linalg.norm(q, axis=-1, keepdims=True)
            mask = np.ones((args.queries, 32), dtype=bool)
            rows.append({"step": f"search, {args.queries} queries",
                         "seconds": best(lambda: maxsim_search(q, mask, store.vectors, store.offsets, 1000), 1)})
        seconds = {r["step"]: r["seconds"] for r in rows}
        for r in rows:
            r["GB/s"] = size / 1e9 / r["seconds"] if not r["step"].startswith("search") else None
            r["x read"] = r["seconds"] / seconds["read"]
        print(f"store: {args.tokens:,} tokens x {args.dim} float16 = {size / 1e9:.3f} GB in {args.documents:,} documents")
        print_table(rows, ["step", "seconds", "GB/s", "x read"])
        verify_share = seconds["verify (TokenStore.load)"] - seconds["read"]
        print(f"verification beyond the read it does: {verify_share:.3f} s")
        write_json("integrity", {"machine": machine(), "bytes": size, "tokens": args.tokens, "dim": args.dim,
                                 "documents": args.documents, "rows": rows})
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
