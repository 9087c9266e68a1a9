"""The note under a table with int8 rows: each int8 result's main metric minus its fp32
counterpart's on the same queries (``record.vs_fp32``, harness/vs_fp32.py), where the results hold
both. A record stored before its fp32 counterpart has none; the note computes it from the two
stored results' per-query scores."""

from __future__ import annotations

from collections.abc import Callable

from harness import vs_fp32
from harness.report.tables import Table, result_id
from harness.results import ResultRecord

NOTE = ("int8 − fp32 (×100, the main metric on the same queries, the paired bootstrap's 95% interval): "
        "{parts}.")


def int8_deltas(records: list[ResultRecord], scores: Callable[[str], object]) -> dict[str, dict]:
    """result id -> vs_fp32 of every int8 result whose fp32 counterpart is among ``records``;
    ``scores(result_id)`` gives a result's per-query frame (None when it has none)."""
    by_card = {(r.dataset, r.card_hash): r for r in records if r.origin == "retriever"}
    out = {}
    for record in records:
        is_int8 = record.origin == "retriever" and record.protocol.get("system", {}).get("precision") == "int8"
        wanted = vs_fp32.fp32_card_hash(record.protocol) if is_int8 else None
        fp32 = by_card.get((record.dataset, wanted)) if wanted else None
        if fp32 is None:
            continue
        if record.vs_fp32 and record.vs_fp32.get("fp32_key") == fp32.key:
            out[result_id(record)] = record.vs_fp32
            continue
        a, b = scores(result_id(fp32)), scores(result_id(record))
        if a is None or b is None:
            continue
        metric = record.main_metric
        out[result_id(record)] = vs_fp32.delta(dict(zip(a["query_id"].astype(str), a[metric])),
                                               dict(zip(b["query_id"].astype(str), b[metric])), metric, fp32.key)
    return out


def attach_int8_notes(tables: list[Table], records: list[ResultRecord], scores: Callable[[str], object]) -> None:
    """Under each table with int8 rows whose fp32 rows are there too, the per-row, per-column deltas."""
    deltas = int8_deltas(records, scores)
    if not deltas:
        return
    for table in tables:
        parts = []
        for row in table.rows:
            for column in table.columns:
                found = [deltas[p.key] for p in table.parts.get((row, column), []) if p.key in deltas]
                if len(found) == 1:
                    d = found[0]
                    parts.append(f"{row} on {column} {100 * d['delta']:+.2f} [{100 * d['ci95'][0]:+.2f}, "
                                 f"{100 * d['ci95'][1]:+.2f}]")
                elif found:  # a group's column: several datasets
                    parts.append(f"{row} on {column} {100 * sum(d['delta'] for d in found) / len(found):+.2f} "
                                 f"(mean of {len(found)})")
        if parts:
            table.notes.append(NOTE.format(parts="; ".join(parts)))
