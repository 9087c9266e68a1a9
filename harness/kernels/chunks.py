"""How ``maxsim_search`` walks the document matrix: chunks of rows read into one reused buffer,
and per chunk a plan of length-sorted tiles (short documents) and piecewise documents (long ones).
"""

from __future__ import annotations

import mmap
from concurrent.futures import ThreadPoolExecutor
import warnings

import numpy as np
import torch


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``array``'s memory; read-only memmaps are fine (we never write to them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(array)


def load_rows(doc_vectors, rows, use: int, renorm: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """float32 (n, use) tensor of the given rows (a slice or an index array), re-normalised if asked."""
    block = doc_vectors[rows, :use] if not isinstance(rows, slice) else doc_vectors[rows][:, :use]
    src = from_numpy(np.asarray(block))
    if out is None:
        out = torch.empty(src.shape, dtype=torch.float32)
    out.copy_(src)
    if renorm:
        out.div_(out.norm(dim=1, keepdim=True).clamp_min_(1e-12))
    return out


class ChunkReader:
    """Consecutive row ranges of the document matrix, for ``maxsim_search``'s chunk loop.

    A read-only ``np.memmap`` of a file (what ``TokenStore`` opens) is read with file reads into one
    reused buffer: the file's pages stay in the OS page cache, out of this process's resident set,
    which holds one chunk; or, for a single query's search (``spans(background=False)``), through
    the map, one span's pages resident at a time. Anything else (in-memory arrays, copy-on-write
    maps whose changes are not in the file, views, array-likes) is sliced as before.
    """

    def __init__(self, doc_vectors, max_rows: int):
        self.doc_vectors, self.buffer = doc_vectors, None
        if (isinstance(doc_vectors, np.memmap) and isinstance(doc_vectors.base, mmap.mmap)
                and doc_vectors.mode != "c" and doc_vectors.flags.c_contiguous and doc_vectors.filename
                and max_rows > 0):
            self.row_bytes = doc_vectors.shape[1] * doc_vectors.dtype.itemsize
            self.start = int(doc_vectors.offset)
            self.buffer = np.empty((max_rows, doc_vectors.shape[1]), dtype=doc_vectors.dtype)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        if self.buffer is None:
            return self.doc_vectors[r0:r1]
        return self._read(r0, r1, self.buffer)

    def spans(self, cuts: list[int], background: bool = True):
        """(r0, r1, rows) for each span between consecutive ``cuts``. From a file, the next span is
        read in a background thread (file reads release the GIL) into a second buffer while the
        caller works on this one, so reading overlaps the scoring; ``rows`` stays valid until the
        caller asks for the span after next. ``background=False`` gives each span as a view of the
        map when asked, and lets its pages go from the resident set after (``_mapped``)."""
        spans = list(zip(cuts[:-1], cuts[1:]))
        if self.buffer is not None and not background and hasattr(mmap.mmap, "madvise") \
                and hasattr(mmap, "MADV_DONTNEED"):
            yield from self._mapped(spans)
            return
        if self.buffer is None or len(spans) < 2 or not background:
            for r0, r1 in spans:
                yield r0, r1, self.rows(r0, r1)
            return
        buffers = [self.buffer, np.empty_like(self.buffer)]
        with ThreadPoolExecutor(1, thread_name_prefix="chunk-reader") as pool:
            pending = pool.submit(self._read, *spans[0], buffers[0])
            for i, (r0, r1) in enumerate(spans):
                rows = pending.result()
                if i + 1 < len(spans):
                    pending = pool.submit(self._read, *spans[i + 1], buffers[(i + 1) % 2])
                yield r0, r1, rows

    def _mapped(self, spans):
        """Each span as a view of the map, its pages let go from the resident set (``MADV_DONTNEED``:
        they stay in the page cache) when the caller asks for the next one. No copy: a single
        query's search read its bytes twice through the buffer (d128: 218 against 137 ms a query)."""
        mm = self.doc_vectors.base
        first = self.doc_vectors.ctypes.data - np.frombuffer(mm, dtype=np.uint8).ctypes.data
        for r0, r1 in spans:
            yield r0, r1, self.doc_vectors[r0:r1]
            lo, hi = first + r0 * self.row_bytes, first + r1 * self.row_bytes
            lo -= lo % mmap.PAGESIZE
            if hi > lo:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def _read(self, r0: int, r1: int, buffer: np.ndarray) -> np.ndarray:
        out = buffer[:r1 - r0]
        view = memoryview(out).cast("B")
        with open(self.doc_vectors.filename, "rb", buffering=0) as f:  # one open per chunk: nothing to close later
            f.seek(self.start + r0 * self.row_bytes)
            done = 0
            while done < len(view):
                n = f.readinto(view[done:])
                if not n:
                    raise OSError(f"{self.doc_vectors.filename}: the file ends before row {r1}")
                done += n
        return out


class Buffers:
    """Reused scratch tensors, grown on demand (fresh allocations page-fault on every chunk)."""

    def __init__(self, device: torch.device):
        self._store: dict[str, torch.Tensor] = {}
        self.device = device

    def get(self, name: str, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
        n = shape[0] * shape[1]
        buf = self._store.get(name)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            size = max(n, int(1.25 * buf.numel()) if buf is not None else n)
            buf = self._store[name] = torch.empty(size, dtype=dtype, device=self.device)
        return buf[:n].view(shape)


def chunk_cuts(bounds: np.ndarray, lo: int, hi: int, limit: int) -> list[int]:
    """Cut points lo < c1 < ... < hi, spans at most ``limit`` long, each ending on a value of the
    sorted ``bounds`` (document boundaries) where one fits, else ``limit`` long (inside a long doc)."""
    cuts, pos = [lo], lo
    while pos < hi:
        j = int(np.searchsorted(bounds, pos + limit, side="right")) - 1
        end = int(bounds[j]) if j >= 0 and bounds[j] > pos else pos + limit
        pos = min(end, hi)
        cuts.append(pos)
    return cuts


class ChunkPlan:
    """How one chunk (rows r0:r1) is scored.

    Short documents (wholly inside the chunk, at most ``tile_cols`` tokens) are sorted by length
    and grouped into tiles of equal padded length ``Lp`` (at most ``tile_cols`` columns a tile);
    a document shorter than ``Lp`` is padded with copies of its own last token, which leaves its
    max unchanged, so a tile's per-document max is one ``amax`` over a (docs, Lp, rows) view.
    ``gather`` holds, per padded row, the chunk-relative row it copies. Long documents (longer
    than ``tile_cols``, or cut by a chunk boundary) are scored piecewise with a running max.
    """

    def __init__(self, offsets: np.ndarray, r0: int, r1: int, tile_cols: int):
        d_lo = int(np.searchsorted(offsets, r0, side="right")) - 1
        d_hi = int(np.searchsorted(offsets, r1, side="left"))
        starts = offsets[d_lo:d_hi]
        ends = offsets[d_lo + 1:d_hi + 1]
        lengths = ends - starts
        whole = (starts >= r0) & (ends <= r1)
        short = whole & (lengths <= tile_cols)
        self.long = [(d_lo + int(i), max(int(starts[i]), r0) - r0, min(int(ends[i]), r1) - r0,
                      bool(starts[i] < r0), bool(ends[i] > r1)) for i in np.flatnonzero(~short)]
        idx = np.flatnonzero(short)
        order = idx[np.argsort(lengths[idx], kind="stable")]
        self.doc_ids = (d_lo + order).astype(np.int64)  # short docs in tile order
        sorted_len = lengths[order]
        self.tiles = []  # (first short doc, n docs, Lp, first padded row)
        gathers, i, row, n = [], 0, 0, order.size
        while i < n:
            lo, hi = 1, n - i  # largest m with m * sorted_len[i + m - 1] <= tile_cols
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if mid * sorted_len[i + mid - 1] <= tile_cols:
                    lo = mid
                else:
                    hi = mid - 1
            lp = int(sorted_len[i + lo - 1])
            docs = order[i:i + lo]
            pad = np.minimum(np.arange(lp)[None, :], (lengths[docs] - 1)[:, None])
            gathers.append((pad + (starts[docs] - r0)[:, None]).ravel())
            self.tiles.append((i, lo, lp, row))
            row += lo * lp
            i += lo
        self.gather = np.concatenate(gathers) if gathers else np.zeros(0, np.int64)
