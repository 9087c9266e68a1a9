"""The protocol clause of a table's caption: what a reader needs to know the table compares."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def _max_length(v: dict | None) -> str:
    v = v or {}
    show = lambda n: "model's own" if n is None else str(n)  # noqa: E731
    return f"max length query {show(v.get('query'))} / document {show(v.get('document'))} tokens"


# The protocol fields, in reading order.
_SUMMARY_FIELDS = [
    ("split", lambda v: f"split {v}"),
    ("max_length", _max_length),
    ("mode", lambda v: "full-corpus retrieval" if v == "full" else "re-ranking given candidates"),
    ("depth", lambda v: f"depth {v}"),
]


def protocol_summary(cards: list[tuple[str, dict[str, Any]]]) -> str:
    """One clause per protocol field; a field whose value differs between datasets names them."""
    clauses = []
    for name, show in _SUMMARY_FIELDS:
        by_value: dict[str, list[str]] = defaultdict(list)
        for label, card in cards:
            by_value[show(card.get(name))].append(label)
        if len(by_value) == 1:
            clauses.append(next(iter(by_value)))
        else:
            clauses.append("; ".join(f"{v} ({', '.join(labels)})" for v, labels in sorted(by_value.items())))
    sampled = sorted(label for label, card in cards if (card.get("filters") or {}).get("sample"))
    if sampled:
        clauses.append(f"sampled: {', '.join(sampled)}")
    return "; ".join(clauses)
