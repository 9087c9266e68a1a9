"""Batches of texts sorted by length, so that padding stays small: what every encoder here feeds
its model (token vectors and the dense baseline alike)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def length_sorted_batches(lengths: Sequence[int], budget: int, max_count: int | None = None) -> Iterator[list[int]]:
    """Indices of the texts in batches of increasing length whose padded size (longest x count)
    stays within ``budget`` tokens and ``max_count`` texts (a text longer than the budget is a batch
    of its own: memory is bounded by the longest text, never by a batch padded to it)."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    yield from batches_in_order(order, list(lengths), budget, max_count)


def batches_in_order(order, lengths: list[int], budget: int, max_count: int | None = None) -> Iterator[list[int]]:
    """Consecutive slices of ``order`` (already sorted by length) within ``budget`` padded tokens."""
    batch: list[int] = []
    for i in order:
        longest = max(lengths[i], lengths[batch[-1]] if batch else 0)
        if batch and (longest * (len(batch) + 1) > budget or (max_count and len(batch) >= max_count)):
            yield batch
            batch = []
        batch.append(int(i))
    if batch:
        yield batch
