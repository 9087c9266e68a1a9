"""What an approximate index costs against exact search on the same queries: ``record.vs_exact``.

- ``delta``: the main metric's mean over queries, approximate minus exact, with the paired
  bootstrap's 95% interval and the two-sided randomization test's p-value (harness/significance.py);
- ``recall_of_exact@10`` / ``@100``: per query, the share of the exact ranking's first 10 (100)
  documents that are among the approximate ranking's first 10 (100), averaged over queries;
- ``rbo``: rank-biased overlap with the exact ranking at p = 0.99 (Webber, Moffat and Zobel, 2010,
  the extrapolated RBO_ext of their equation 32, over the whole rankings), averaged;
- ``documents_scored_per_query`` (mean, p50, max): documents whose vectors were fully scored;
- ``latency_ms`` (p50, p95) of one query's search against exact search's where it is known, the
  index's bytes and build seconds.

The exact run comes from a stored result whose protocol card (system section included) is the one
exact search would write, else from a run cached under the harness's home by that card's hash,
else from searching exactly (the document stores are cached: nothing is encoded again).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import numpy as np

from harness.metrics import Evaluation, evaluate
from harness.runs import Run
from harness.significance import paired_bootstrap, randomization_test

log = logging.getLogger(__name__)
RBO_P = 0.99
RECALL_DEPTHS = (10, 100)


def recall_of_exact(exact: list[str], approximate: list[str], k: int) -> float | None:
    """The share of ``exact[:k]`` found in ``approximate[:k]``; None when the exact ranking is empty."""
    top = exact[:k]
    return len(set(top) & set(approximate[:k])) / len(top) if top else None


def rbo(a: list[str], b: list[str], p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap of two rankings without repeats (RBO_ext; 1 when equal)."""
    if not a and not b:
        return 1.0
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, l = len(short), len(long_)
    if s == 0:
        return 0.0
    seen_s, seen_l, overlap = set(), set(), 0
    x = np.zeros(l + 1)
    for d in range(1, l + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
        else:
            overlap += item_l in seen_s
        seen_l.add(item_l)
        x[d] = overlap
    d = np.arange(1, l + 1)
    weights = p ** d
    total = np.sum(x[1:] / d * weights)
    if l > s:
        tail = d > s
        total += np.sum(x[s] * (d[tail] - s) / (s * d[tail]) * weights[tail])
    return float((1 - p) / p * total + ((x[l] - x[s]) / l + x[s] / s) * p ** l)


def _stats(values) -> dict[str, float]:
    v = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(v.mean()), "p50": float(np.percentile(v, 50)), "max": float(v.max())} if v.size else {}


def loss(exact_run: Run, approximate_run: Run, exact_eval: Evaluation, approximate_eval: Evaluation, metric: str,
         scored_per_query: dict[str, int] | None = None, cost: dict[str, Any] | None = None,
         exact_cost: dict[str, Any] | None = None, source: str = "searched") -> dict[str, Any]:
    """``record.vs_exact`` from the two runs (as scored: after the suite's protocol) and evaluations."""
    queries = [q for q in exact_eval.per_query[metric] if q in approximate_eval.per_query[metric]]
    exact_scores = [exact_eval.per_query[metric][q] for q in queries]
    approximate_scores = [approximate_eval.per_query[metric][q] for q in queries]
    boot = paired_bootstrap(exact_scores, approximate_scores)
    out: dict[str, Any] = {
        "exact_source": source, "metric": metric, "n_queries": len(queries),
        "exact": float(np.mean(exact_scores)), "approximate": float(np.mean(approximate_scores)),
        "delta": boot.delta, "ci95": [boot.low, boot.high], "p_value": randomization_test(exact_scores,
                                                                                          approximate_scores),
    }
    ranked_q = [q for q in exact_run if q in approximate_run]
    exact_lists = {q: [d for d, _ in exact_run[q]] for q in ranked_q}
    approximate_lists = {q: [d for d, _ in approximate_run[q]] for q in ranked_q}
    for k in RECALL_DEPTHS:
        values = [recall_of_exact(exact_lists[q], approximate_lists[q], k) for q in ranked_q]
        values = [v for v in values if v is not None]
        out[f"recall_of_exact@{k}"] = float(np.mean(values)) if values else None
    out["rbo"] = float(np.mean([rbo(exact_lists[q], approximate_lists[q]) for q in ranked_q])) if ranked_q else None
    out["rbo_p"] = RBO_P
    if scored_per_query:
        out["documents_scored_per_query"] = _stats(scored_per_query.values())
    cost, exact_cost = cost or {}, exact_cost or {}
    latency = cost.get("search_latency_ms")
    if latency:
        out["latency_ms"] = {"p50": latency["p50"], "p95": latency["p95"]}
    if exact_cost.get("search_latency_ms"):
        out["exact_latency_ms"] = {n: exact_cost["search_latency_ms"][n] for n in ("p50", "p95")}
    for name in ("approximate_index_bytes", "index_build_s"):
        if name in cost:
            out[name.replace("approximate_", "")] = cost[name]
    return out


def cached_run_path(home: Path, card_hash: str) -> Path:
    return home / "exact-runs" / card_hash[:2] / f"{card_hash}.trec.gz"


def read_cached_run(path: Path) -> Run | None:
    try:
        return Run.from_trec(path)
    except (OSError, EOFError, ValueError, gzip.BadGzipFile) as e:
        if path.exists():
            log.warning("cached exact run %s cannot be read (%s); searching again", path, e)
        return None


def evaluate_main(qrels, run: Run, metric: str) -> Evaluation:
    return evaluate(qrels, run, [metric], metric)


def exact_reference(card_hash: str, results: Path, dataset: str, home: Path, search) -> tuple[Run, dict, str]:
    """(exact run, its cost, where it came from): a stored result with ``card_hash`` for ``dataset``
    under ``results``, else the run cached under ``home``, else ``search()`` (then cached)."""
    from harness import atomic
    from harness.errors import CorruptFileError
    from harness.results import stored_with_card

    found = stored_with_card(results, card_hash, dataset)
    if found is not None:
        folder, record = found
        try:
            return Run.from_trec(folder / "run.trec.gz"), record.cost, "stored result"
        except (CorruptFileError, OSError, ValueError):
            pass  # a damaged result is not a reference
    path = cached_run_path(home, card_hash)
    run = read_cached_run(path) if path.exists() else None
    if run is not None:
        return run, {}, "cached run"
    run = search()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temporary(path)
    run.to_trec(tmp.with_name(tmp.name + ".trec.gz"))
    tmp.with_name(tmp.name + ".trec.gz").replace(path)
    return run, {}, "searched"
