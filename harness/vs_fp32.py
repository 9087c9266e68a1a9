"""What ``precision: int8`` costs against fp32 on the same queries: ``record.vs_fp32``.

An int8 result's counterpart is the stored result whose protocol card is the int8 one with
``system.precision`` set to fp32 and without ``int8_scheme`` (the same model, settings, ``dim``
and data), so each ``dim`` of a sweep is compared with fp32 at that ``dim``. The record keeps the main metric of
both, int8 minus fp32 with the paired bootstrap's 95% interval and the randomization test's
p-value (harness/significance.py), and the fp32 result's key. ``harness run`` stores it when the
fp32 result is already there; the report computes the same thing from the two stored results when
fp32 was run after int8 (harness/report/vs_fp32.py), so a table with both rows shows it either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.protocol import ProtocolCard
from harness.significance import paired_bootstrap, randomization_test


def fp32_card_hash(card: ProtocolCard | dict[str, Any]) -> str | None:
    """The card hash of ``card``'s fp32 counterpart; None unless ``card`` is an int8 result's."""
    card = card if isinstance(card, ProtocolCard) else ProtocolCard(**card)
    if card.system.get("precision") != "int8":
        return None
    # the same system but fp32, which has no int8_scheme
    system = {k: v for k, v in card.system.items() if k != "int8_scheme"}
    return ProtocolCard(**{**card.to_dict(), "system": {**system, "precision": "fp32"}}).card_hash


def delta(fp32: dict[str, float], int8: dict[str, float], metric: str, fp32_key: str) -> dict[str, Any]:
    """``record.vs_fp32`` from the two results' per-query scores of ``metric`` (query id -> score)."""
    queries = sorted(set(fp32) & set(int8))
    a, b = [fp32[q] for q in queries], [int8[q] for q in queries]
    boot = paired_bootstrap(a, b)
    return {"metric": metric, "fp32_key": fp32_key, "n_queries": len(queries), "fp32": float(np.mean(a)),
            "int8": float(np.mean(b)), "delta": boot.delta, "ci95": [boot.low, boot.high],
            "p_value": randomization_test(a, b)}


def stored_fp32(card: ProtocolCard, dataset: str, results: Path):
    """(folder, record) of the stored fp32 counterpart of the int8 result ``card``, or None."""
    from harness.results import stored_with_card

    wanted = fp32_card_hash(card)
    return None if wanted is None else stored_with_card(results, wanted, dataset)


def per_query_scores(folder: Path, metric: str) -> dict[str, float]:
    from harness.results import load_per_query

    frame = load_per_query(folder)
    return dict(zip(frame["query_id"].astype(str), frame[metric].astype(float)))


def against_stored(card: ProtocolCard, dataset: str, results: Path, int8_scores: dict[str, float],
                   metric: str) -> dict[str, Any] | None:
    """``record.vs_fp32`` for a new int8 result, when its fp32 counterpart is stored; else None."""
    found = stored_fp32(card, dataset, results)
    if found is None:
        return None
    folder, record = found
    return delta(per_query_scores(folder, metric), int8_scores, metric, record.key)
