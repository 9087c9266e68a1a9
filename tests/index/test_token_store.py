import json
from importlib import metadata

import numpy as np
import pytest

from harness import protocol
from harness.errors import CorruptFileError
from harness.index import cache
from harness.index.token_store import TokenStore, TokenStoreWriter


def docs(seed=0, n=5, dim=8):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((rng.integers(1, 6), dim)).astype(np.float32) for _ in range(n)]


def test_documents_written_in_any_order_read_back_in_place(tmp_path):
    vectors = docs()
    writer = TokenStoreWriter(tmp_path / "s", [len(v) for v in vectors], dim=8, dtype="float16", manifest={"k": 1})
    for i in [3, 0, 4, 1, 2]:
        writer.write(i, vectors[i])
    store = writer.finish()
    assert store.n_docs == 5 and store.n_tokens == sum(len(v) for v in vectors)
    assert store.offsets.tolist() == np.concatenate([[0], np.cumsum([len(v) for v in vectors])]).tolist()
    for i, v in enumerate(vectors):
        np.testing.assert_array_equal(store.doc(i), v.astype(np.float16))
    assert isinstance(store.vectors, np.memmap)
    assert store.nbytes() == store.n_tokens * 8 * 2 + 6 * 8
    assert store.nbytes(dim=4) == store.n_tokens * 4 * 2 + 6 * 8
    assert (tmp_path / "s" / "vectors.bin").stat().st_size == store.n_tokens * 8 * 2
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["k"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_incomplete_or_damaged_stores_are_never_opened(tmp_path):
    vectors = docs()
    writer = TokenStoreWriter(tmp_path / "s", [len(v) for v in vectors], dim=8)
    writer.write(0, vectors[0])
    with pytest.raises(ValueError, match=r"documents \[1, 2, 3, 4\] were never written"):
        writer.finish()
    writer.abort()
    assert TokenStore.open(tmp_path / "s") is None and list(tmp_path.iterdir()) == []

    writer = TokenStoreWriter(tmp_path / "s", [len(v) for v in vectors], dim=8)
    for i, v in enumerate(vectors):
        writer.write(i, v)
    writer.finish()
    with open(tmp_path / "s" / "vectors.bin", "r+b") as f:  # a truncated vector file
        f.truncate(10)
    assert TokenStore.open(tmp_path / "s") is None
    with pytest.raises(ValueError, match=r"document 0: expected \(2, 8\) rows, got \(3, 8\)"):
        TokenStoreWriter(tmp_path / "t", [2], dim=8).write(0, np.zeros((3, 8)))


def test_overwritten_or_unsealed_stores_are_refused_by_name(tmp_path):
    vectors = docs()
    writer = TokenStoreWriter(tmp_path / "s", [len(v) for v in vectors], dim=8)
    for i, v in enumerate(vectors):
        writer.write(i, v)
    writer.finish()
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["offsets.npy", "vectors.bin"]
    data = bytearray((tmp_path / "s" / "vectors.bin").read_bytes())
    data[5:9] = b"\x00\x7c\x00\x7c"  # two float16 infinities in place of the first document's values
    (tmp_path / "s" / "vectors.bin").write_bytes(bytes(data))
    assert TokenStore.open(tmp_path / "s") is None
    with pytest.raises(CorruptFileError, match=r"vectors\.bin block 0 of 1 \(bytes 0-\d+\) does not match its checksum"):
        TokenStore.load(tmp_path / "s")
    # A store from before checksums (a manifest without them) is incomplete: it is encoded again.
    old = {k: v for k, v in manifest.items() if k not in ("files", "sealed_crc32")}
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(old))
    with pytest.raises(CorruptFileError, match=r"manifest\.json has no checksum \(written before checksums"):
        TokenStore.load(tmp_path / "s")


def test_rebuild_replaces_a_damaged_store(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "vectors.bin").write_bytes(b"junk")
    writer = TokenStoreWriter(tmp_path / "s", [1], dim=2)
    writer.write(0, np.ones((1, 2)))
    store = writer.finish()
    assert store.doc(0).tolist() == [[1.0, 1.0]]


def test_documents_added_chunk_by_chunk_land_where_one_list_of_counts_puts_them(tmp_path):
    vectors = docs(n=11)
    counts = [len(v) for v in vectors]
    writer = TokenStoreWriter(tmp_path / "c", counts[:2], dim=8, sync_bytes=64)  # syncs every few documents
    with pytest.raises(ValueError, match=r"document 2 was not added to the store \(it has 2\)"):
        writer.write(2, vectors[2])
    writer.write(1, vectors[1])
    for lo, hi in [(2, 3), (3, 3), (3, 10), (10, 11)]:  # one, none, seven (past the doubled capacity), one
        writer.extend(counts[lo:hi])
        if hi - lo == 7:  # a span of documents in one write
            with pytest.raises(ValueError, match=r"documents 3-9: expected \(\d+, 8\) rows, got \(2, 8\)"):
                writer.write_span(3, 10, vectors[3][:2])
            writer.write_span(3, 10, np.concatenate(vectors[3:10]))
        for i in reversed(range(lo, hi) if hi - lo == 1 else []):
            writer.write(i, vectors[i])
    writer.write(0, vectors[0])
    with pytest.raises(ValueError, match="every document needs at least one vector"):
        writer.extend([1, 0])
    chunked = writer.finish()
    whole = TokenStoreWriter(tmp_path / "w", counts, dim=8)
    for i, v in enumerate(vectors):
        whole.write(i, v)
    whole = whole.finish()
    assert chunked.n_docs == 11 and chunked.offsets.tolist() == whole.offsets.tolist()
    assert chunked.offsets.tolist() == np.concatenate([[0], np.cumsum(counts)]).tolist()
    np.testing.assert_array_equal(chunked.vectors, whole.vectors)
    assert (tmp_path / "c" / "vectors.bin").read_bytes() == (tmp_path / "w" / "vectors.bin").read_bytes()


def test_a_store_of_no_documents(tmp_path):
    writer = TokenStoreWriter(tmp_path / "e", [], dim=4)
    writer.write_span(0, 0, np.zeros((0, 4)))  # an empty span writes nothing
    store = writer.finish()
    assert store.n_docs == 0 and store.n_tokens == 0 and store.vectors.shape == (0, 4)
    assert TokenStore.open(tmp_path / "e").offsets.tolist() == [0]


def test_cache_builds_once_then_reuses(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    cache.STATS.clear()
    built = []

    def build(make_writer):
        built.append(1)
        writer = make_writer(np.array([2, 1]), 4)
        writer.write(0, np.ones((2, 4)))
        writer.write(1, np.zeros((1, 4)))
        return writer.finish()

    key = {"role": "document", "model": "m", "corpus": "abc"}
    first, hit1 = cache.open_or_build(key, build)
    second, hit2 = cache.open_or_build(key, build)
    third, hit3 = cache.open_or_build({**key, "corpus": "abd"}, build)
    assert (hit1, hit2, hit3) == (False, True, False)
    assert len(built) == 2 and dict(cache.STATS) == {"misses": 2, "hits": 1}
    assert second.path == first.path != third.path
    assert first.path.parent.parent == tmp_path / "tokens"


def test_every_store_key_holds_the_scoring_version_and_the_encoding_libraries(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))

    def build(make_writer):
        writer = make_writer(np.array([1]), 4)
        writer.write(0, np.ones((1, 4)))
        return writer.finish()

    key = {"role": "document", "model": "m", "corpus": "abc"}
    store, _ = cache.open_or_build(key, build)
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["key"] == key and manifest["scoring_version"] == protocol.SCORING_VERSION
    assert manifest["libraries"] == {"transformers": metadata.version("transformers"),
                                     "tokenizers": metadata.version("tokenizers")}
    compressed = cache.store_path(cache.compressed_key(key, 4, {"kind": "int8"}))
    # A bumped scoring version finds neither the documents nor their compressed forms.
    monkeypatch.setattr(protocol, "SCORING_VERSION", protocol.SCORING_VERSION + 1)
    bumped, hit = cache.open_or_build(key, build)
    assert not hit and bumped.path != store.path
    assert cache.store_path(cache.compressed_key(key, 4, {"kind": "int8"})) != compressed
    # Nor does another transformers release: its tokenizer or model code may encode otherwise.
    monkeypatch.undo()
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    installed = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "99.0" if name == "transformers" else installed(name))
    assert cache.store_path(key) not in (store.path, bumped.path)


def test_corpus_fingerprint_sees_ids_and_texts():
    base = cache.corpus_fingerprint(["a", "b"], ["x", "y"])
    assert base == cache.corpus_fingerprint(["a", "b"], ["x", "y"])
    assert base != cache.corpus_fingerprint(["a", "b"], ["x", "y "])
    assert base != cache.corpus_fingerprint(["b", "a"], ["x", "y"])
    assert base != cache.corpus_fingerprint(["ab"], ["xy"])
