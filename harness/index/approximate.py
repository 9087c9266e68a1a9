"""The late-interaction retriever's ``index`` parameter: ``exact`` (MaxSim over every document),
``plaid`` (harness/index/plaid.py, over the residual-compressed store) or ``faiss``
(harness/index/faiss_e2e.py, over the token store). ``IndexSettings`` checks the settings (each
refusal names its field) and resolves colbert-ai's defaults for a search depth; ``ApproximateIndex``
holds what one index built per shard and searches them, merging with ``shards.merge_topk``.

Built parts (PLAID's inverted lists, faiss indexes) are kept in a per-process cache by key, and
faiss indexes on disk too (harness/index/cache.py): a sweep over ``ncells``, ``ndocs``,
``centroid_score_threshold``, ``nprobe``, ``ef_search`` or ``faiss_depth`` builds nothing again.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.errors import ParameterError
from harness.hashing import sha256
from harness.index import faiss_e2e, plaid, shards

INDEX_KINDS = ("exact", "plaid", "faiss")
PLAID_FIELDS = ("ncells", "centroid_score_threshold", "ndocs")
FAISS_FIELDS = ("faiss_kind", "nlist", "pq_m", "pq_nbits", "nprobe", "hnsw_m", "ef_construction", "ef_search",
                "faiss_depth")
# ColBERTv1's FAISS defaults (colbert-ai v0.1: --nprobe 10 --faiss_depth 1024, 16 x 8-bit PQ codes).
FAISS_DEFAULTS = {"faiss_kind": "ivfpq", "pq_m": 16, "pq_nbits": 8, "nprobe": 10, "hnsw_m": 32,
                  "ef_construction": 40, "ef_search": 128, "faiss_depth": 1024}
TRAIN_POINTS_PER_LIST = 64
# Every retriever parameter that belongs to the index, not to the exact search under it.
SETTING_NAMES = ("index", *PLAID_FIELDS, *FAISS_FIELDS)

# Built parts by key, for the life of the process: (key digest) -> InvertedLists | FaissIndex.
_BUILT: dict[str, Any] = {}


@dataclass(frozen=True)
class IndexSettings:
    kind: str = "exact"
    ncells: int | None = None
    centroid_score_threshold: float | None = None
    ndocs: int | None = None
    faiss_kind: str | None = None
    nlist: int | None = None
    pq_m: int | None = None
    pq_nbits: int | None = None
    nprobe: int | None = None
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    faiss_depth: int | None = None

    def check(self, storage: str, dim: int | None) -> IndexSettings:
        """Refuse what no search could mean, by field, before any work; returns self."""
        if self.kind not in INDEX_KINDS:
            raise ParameterError(f"index {self.kind!r} is unknown; choose one of {', '.join(INDEX_KINDS)}.", "index")
        given = {name: value for name, value in asdict(self).items() if name != "kind" and value is not None}
        foreign = [n for n in given if n not in (PLAID_FIELDS if self.kind == "plaid" else
                                               FAISS_FIELDS if self.kind == "faiss" else ())]
        if foreign:
            raise ParameterError(f"{foreign[0]} is a setting of another index than index: {self.kind}; remove it, "
                                 f"or set the index it belongs to ({'plaid' if foreign[0] in PLAID_FIELDS else 'faiss'}).",
                                 foreign[0])
        if self.kind == "plaid" and not storage.startswith("residual-"):
            raise ParameterError(f"index: plaid searches the residual-compressed store (its centroids and codes), "
                                 f"but storage is {storage}; set storage: residual-1, residual-2 or residual-4, or "
                                 "use index: exact or faiss.", "index")
        if self.kind == "faiss" and storage != "fp16" and storage != "fp32":
            raise ParameterError(f"index: faiss re-scores its candidates from the full-precision token store, but "
                                 f"storage is {storage}; set storage: fp16 (or fp32), or use index: plaid over a "
                                 "residual store.", "index")
        for name in ("ncells", "ndocs", "nlist", "pq_m", "nprobe", "hnsw_m", "ef_construction", "ef_search",
                     "faiss_depth"):
            value = given.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ParameterError(f"{name}={value!r} is not a count; give a whole number of at least 1.", name)
        if self.pq_nbits is not None and self.pq_nbits not in (4, 6, 8, 10, 12, 16):
            raise ParameterError(f"pq_nbits={self.pq_nbits!r} is not a faiss PQ code width; choose 4, 6, 8, 10, 12 "
                                 "or 16 bits.", "pq_nbits")
        if self.faiss_kind is not None and self.faiss_kind not in faiss_e2e.FAISS_KINDS:
            raise ParameterError(f"faiss_kind {self.faiss_kind!r} is unknown; choose "
                                 f"{' or '.join(faiss_e2e.FAISS_KINDS)}.", "faiss_kind")
        if self.kind == "faiss" and dim is not None and dim % (self.pq_m or FAISS_DEFAULTS["pq_m"]) \
                and (self.faiss_kind or "ivfpq") == "ivfpq":
            raise ParameterError(f"pq_m={self.pq_m or FAISS_DEFAULTS['pq_m']} does not divide dim={dim}; give a "
                                 "pq_m that does (each sub-quantiser codes dim / pq_m coordinates).", "pq_m")
        return self

    def check_depth(self, k: int) -> None:
        if self.kind == "plaid" and self.ndocs is not None and self.ndocs < k:
            raise ParameterError(f"ndocs={self.ndocs} is below the search depth {k}: PLAID would return fewer "
                                 f"documents than asked for; give ndocs of at least {k}, or leave it unset "
                                 "(colbert-ai's default for the depth).", "ndocs")

    def resolved(self, k: int | None) -> dict[str, Any]:
        """The settings the search uses at depth ``k`` (None: unknown yet, defaults named)."""
        if self.kind == "plaid":
            defaults = plaid.PlaidSettings.defaults(k) if k is not None else {}
            return {"kind": "plaid", **{n: getattr(self, n) if getattr(self, n) is not None
                                        else defaults.get(n, "colbert-ai default for the depth") for n in PLAID_FIELDS}}
        if self.kind == "faiss":
            kind = self.faiss_kind or FAISS_DEFAULTS["faiss_kind"]
            fields = ("pq_m", "pq_nbits", "nprobe", "nlist") if kind == "ivfpq" else ("hnsw_m", "ef_construction",
                                                                                     "ef_search")
            out = {"kind": "faiss", "faiss_kind": kind, "faiss_depth": self.faiss_depth or FAISS_DEFAULTS["faiss_depth"]}
            for n in fields:
                value = getattr(self, n)
                out[n] = value if value is not None else FAISS_DEFAULTS.get(n, "ColBERTv1: 2^ceil(log2(8 sqrt(tokens)))")
            if kind == "ivfpq":
                out["train_points_per_list"] = TRAIN_POINTS_PER_LIST
            return out
        return {"kind": "exact"}


def _built(key: dict, make):
    digest = sha256(key)
    if digest not in _BUILT:
        _BUILT[digest] = make()
    return _BUILT[digest]


class ApproximateIndex:
    """What ``settings`` needs per shard, built (or found) by ``prepare``, searched by ``search``."""

    def __init__(self, settings: IndexSettings):
        self.settings = settings
        self.parts: list[tuple[int, Any, Any]] = []  # (first document, searched store, built part)
        self.build_s, self.index_bytes, self.cache = 0.0, 0, "hit"

    def prepare(self, parts: list[tuple[dict, int, Any, Any]], dim: int) -> None:
        """``parts``: (key, first document, token store, compressed store or None) per shard."""
        self.parts, self.build_s, self.index_bytes, self.cache = [], 0.0, 0, "hit"
        resolved = self.settings.resolved(None)
        for key, first, shard, compressed in parts:
            if self.settings.kind == "plaid":
                t = time.perf_counter()
                n_centroids = len(compressed.arrays["centroids"])
                lists = _built({"role": "plaid-ivf", "store": str(compressed.path)},
                               lambda: plaid.inverted_lists(compressed.arrays["centroid_ids"], compressed.offsets,
                                                            n_centroids))
                self.build_s += compressed.build_seconds + time.perf_counter() - t
                self.index_bytes += compressed.nbytes() + lists.nbytes
                self.parts.append((first, compressed, lists))
            else:
                kind = resolved["faiss_kind"]
                build = {"nlist": self.settings.nlist or faiss_e2e.default_nlist(shard.n_tokens),
                         "pq_m": resolved.get("pq_m"), "pq_nbits": resolved.get("pq_nbits"),
                         "train_points_per_list": TRAIN_POINTS_PER_LIST, "seed": 0,
                         "hnsw_m": resolved.get("hnsw_m"), "ef_construction": resolved.get("ef_construction")}
                build = {n: build[n] for n in faiss_e2e.BUILD_FIELDS[kind]}
                found = {}

                def make(key=key, shard=shard, kind=kind, build=build):
                    index, hit = faiss_e2e.open_or_build(key, shard, dim, kind, build)
                    found["hit"] = hit
                    return index

                index = _built(faiss_e2e.index_key(key, dim, kind, build), make)
                if not found.get("hit", True):
                    self.cache = "miss"
                self.build_s += index.build_seconds
                self.index_bytes += index.nbytes + shard.nbytes(dim)
                self.parts.append((first, shard, (index, plaid.token_documents(shard.offsets))))

    def search(self, queries: np.ndarray, mask: np.ndarray, k: int, tie_rank: np.ndarray, dim: int | None,
               **kernel) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Per query: (scores, corpus document indices) of the top k, and documents fully scored."""
        self.settings.check_depth(k)
        resolved = self.settings.resolved(k)
        scored = np.zeros(len(queries), dtype=np.int64)
        out_scores, out_docs = [], []
        for i in range(len(queries)):
            found = []
            for first, store, built in self.parts:
                ranks = tie_rank[first:first + store.n_docs]
                if self.settings.kind == "plaid":
                    s, d, n = plaid.plaid_search_one(queries[i], mask[i], store, built, plaid.PlaidSettings(
                        resolved["ncells"], resolved["centroid_score_threshold"], resolved["ndocs"]), k, ranks, **kernel)
                else:
                    index, token_docs = built
                    faiss_e2e.set_search_params(index, resolved["faiss_kind"], resolved.get("nprobe"),
                                                resolved.get("ef_search"))
                    s, d, n = faiss_e2e.faiss_search_one(queries[i], mask[i], store, index, resolved["faiss_depth"],
                                                         k, ranks, token_docs, dim or store.dim, **kernel)
                found.append((s[None], d[None] + first))
                scored[i] += n
            s, d = found[0] if len(found) == 1 else shards.merge_topk(found, k, tie_rank)
            out_scores.append(s[0])
            out_docs.append(d[0])
        return out_scores, out_docs, scored
