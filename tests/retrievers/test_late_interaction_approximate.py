"""``index: plaid`` and ``index: faiss`` on the real MiniLM weights: settings that exclude nothing
give exact search's run (one shard or several), a sweep over search settings builds nothing again,
and bad settings are refused by field before any work."""

import numpy as np
import pytest

from harness.errors import ParameterError
from harness.index import approximate, cache
from harness.retrievers.late_interaction import LateInteractionRetriever

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TOPICS = ["vitamin D and bone density", "the common cold", "protein folding", "the developing brain",
          "sleep and memory", "coffee and the heart", "air pollution and asthma", "exercise and mood"]
DOCS = [f"{kind} {topic}: {detail}." for topic in TOPICS for kind, detail in
        (("A study of", "a cohort of patients followed for ten years"), ("A review of", "what trials found"))]
IDS = [f"doc{i:02d}" for i in range(len(DOCS))]
QIDS, QUERIES = ["q1", "q2", "q3"], ["bone density", "protein structure prediction", "asthma in cities"]
EVERYTHING = {"plaid": {"ncells": 10**6, "centroid_score_threshold": -10000.0, "ndocs": 10**6},
              "faiss-hnsw": {"faiss_kind": "hnsw", "ef_search": 10**5, "faiss_depth": 10**5},
              "faiss-ivfpq": {"faiss_kind": "ivfpq", "nlist": 4, "nprobe": 4, "pq_nbits": 4, "faiss_depth": 10**5}}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cache.STATS.clear()
    approximate._BUILT.clear()


def retriever(**params):
    r = LateInteractionRetriever(MODEL, format="plain", dim=128, **params)
    r.set_max_length(32, 64)
    return r


def ranked(run):
    return {q: [d for d, _ in run[q]] for q in run}


# 256 vectors: 4 documents a shard at doc_maxlen 64 (a plan counts each document at its most).
@pytest.mark.parametrize("shard_tokens", [1 << 24, 256], ids=["one shard", "shards"])
@pytest.mark.parametrize("name", list(EVERYTHING))
def test_settings_that_exclude_nothing_give_the_exact_run(name, shard_tokens):
    storage = "residual-2" if name == "plaid" else "fp16"
    exact = retriever(storage=storage, shard_tokens=shard_tokens)
    exact.index(IDS, DOCS)
    expected = exact.search(QIDS, QUERIES, k=5)
    index = retriever(storage=storage, shard_tokens=shard_tokens, index=name.split("-")[0], **EVERYTHING[name])
    index.index(IDS, DOCS)
    assert index.cost()["n_shards"] == (1 if shard_tokens > 1000 else exact.cost()["n_shards"])
    run = index.search(QIDS, QUERIES, k=5)
    assert ranked(run) == ranked(expected)
    for q in QIDS:  # a batch of queries sums in another order than one query: float32 rounding
        np.testing.assert_allclose([s for _, s in run[q]], [s for _, s in expected[q]], rtol=2**-21)
    assert index.cost()["documents_scored_per_query"] == len(DOCS)
    assert index.settings()["index"]["kind"] == name.split("-")[0]
    assert "index" not in exact.settings()  # exact results keep the keys they had


def test_a_sweep_over_search_settings_builds_nothing_again():
    first = retriever(index="faiss", faiss_kind="hnsw", ef_search=16)
    first.index(IDS, DOCS)
    second = retriever(index="faiss", faiss_kind="hnsw", ef_search=64, faiss_depth=8)
    second.index(IDS, DOCS)
    assert cache.STATS["faiss_misses"] == 1 and second.cost()["approximate_cache"] == "hit"
    assert first.settings()["index"]["ef_search"] == 16 and second.settings()["index"]["faiss_depth"] == 8
    plaid_runs = []
    for ncells in (1, 2):
        r = retriever(storage="residual-2", index="plaid", ncells=ncells)
        r.index(IDS, DOCS)
        plaid_runs.append(r)
    assert cache.STATS["compressed_misses"] == 1 and cache.STATS["compressed_hits"] == 1
    assert len(approximate._BUILT) == 2  # one faiss index, one set of inverted lists
    # the depth given before settings() resolves colbert-ai's defaults into the protocol
    plaid_runs[0].set_depth(10)
    assert plaid_runs[0].settings()["index"] == {"kind": "plaid", "ncells": 1, "centroid_score_threshold": 0.5,
                                                 "ndocs": 256}


@pytest.mark.parametrize("params, field, message", [
    ({"index": "ivf"}, "index", "index 'ivf' is unknown; choose one of exact, plaid, faiss."),
    ({"index": "plaid", "storage": "residual-2", "ncells": 0}, "ncells",
     "ncells=0 is not a count; give a whole number of at least 1."),
    ({"index": "plaid"}, "index", "index: plaid searches the residual-compressed store (its centroids and codes), "
                                  "but storage is fp16; set storage: residual-1, residual-2 or residual-4, or use "
                                  "index: exact or faiss."),
    ({"index": "faiss", "storage": "int8"}, "index", "index: faiss re-scores its candidates from the full-precision "
                                                     "token store, but storage is int8"),
    ({"index": "faiss", "ncells": 2}, "ncells", "ncells is a setting of another index than index: faiss"),
    ({"index": "faiss", "pq_m": 48}, "pq_m", "pq_m=48 does not divide dim=128"),
    ({"index": "faiss", "faiss_kind": "lsh"}, "faiss_kind", "faiss_kind 'lsh' is unknown; choose ivfpq or hnsw."),
])
def test_bad_settings_are_refused_by_field_before_any_work(params, field, message):
    with pytest.raises(ParameterError) as e:
        retriever(**params)
    assert e.value.param == field and str(e.value).startswith(message)
    assert not cache.STATS  # nothing encoded or built


def test_ndocs_below_the_depth_is_refused_when_the_depth_is_given():
    r = retriever(storage="residual-2", index="plaid", ndocs=50)
    with pytest.raises(ParameterError) as e:
        r.set_depth(100)
    assert e.value.param == "ndocs" and str(e.value).startswith("ndocs=50 is below the search depth 100")


def files_on_disk(folder) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.name != "manifest.json")


@pytest.mark.parametrize("name", ["faiss-ivfpq", "faiss-hnsw", "plaid"])
def test_the_stored_bytes_are_what_the_search_needs(name):
    """The storage figure (``index_bytes``, per document: the storage plot's x) of an approximate
    result counts the index and the store it re-scores from, as their files on disk."""
    storage = "residual-2" if name == "plaid" else "fp16"
    store = retriever(storage=storage)
    store.index(IDS, DOCS)
    settings = {"faiss-ivfpq": {"faiss_kind": "ivfpq", "nlist": 4, "pq_nbits": 4},
                "faiss-hnsw": {"faiss_kind": "hnsw"}, "plaid": {}}[name]
    r = retriever(storage=storage, index=name.split("-")[0], **settings)
    r.index(IDS, DOCS)
    cost, store_bytes = r.cost(), store.cost()["index_bytes"]
    _, searched, built = r._approximate.parts[0]
    if name == "plaid":  # the residual store's files and the inverted lists (kept in memory)
        assert store_bytes == files_on_disk(searched.path)
        assert cost["index_bytes"] == store_bytes + built.starts.nbytes + built.docs.nbytes
    else:  # the faiss index file and the float16 store at dim 128 (offsets included)
        n_tokens = store.cost()["n_tokens"]
        assert store_bytes == n_tokens * 128 * 2 + (len(DOCS) + 1) * 8
        assert cost["index_bytes"] == store_bytes + (built[0].path / "index.faiss").stat().st_size
    assert cost["index_bytes"] > store_bytes and cost["store_bytes"] == store_bytes
    assert cost["index_bytes"] == cost["approximate_index_bytes"]
    assert cost["bytes_per_document"] == cost["index_bytes"] / len(DOCS)
    fp16_bytes = store_bytes if name != "plaid" else store.cost()["compression_ratio"] * store_bytes
    assert cost["compression_ratio"] == pytest.approx(fp16_bytes / cost["index_bytes"], rel=1e-12)
