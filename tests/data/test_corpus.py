"""Corpora read from Parquet in batches: spans, kept rows, joined fields and the fingerprint are
those of the same documents held as lists, and reading a span reads only its row groups."""

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.data.corpus import Corpus, Documents, DocumentTable
from harness.encoders.batches import length_sorted_batches
from harness.index import cache

N = 1000


def _table(path, n=N, group=64):
    ids = [f"d{i}" for i in range(n)]
    titles = [f"title {i}" if i % 3 else "" for i in range(n)]
    texts = [f"text of {i} " * (i % 7) for i in range(n)]
    pq.write_table(pa.table({"id": ids, "title": titles, "text": texts}), path, row_group_size=group)
    return ids, titles, texts


def test_spans_and_batches_of_a_parquet_corpus_are_the_lists(tmp_path):
    ids, titles, texts = _table(tmp_path / "docs.parquet")
    table = DocumentTable(tmp_path / "docs.parquet")
    assert len(table) == N and table.ids() == ids and table.row_groups()[:3].tolist() == [0, 64, 128]
    documents = Corpus(table).documents(("title", "text"), " ")
    joined = [" ".join(p for p in parts if p) for parts in zip(titles, texts)]
    assert documents.texts() == joined
    assert documents.texts(130, 517) == joined[130:517]  # across row groups, inside none whole
    sizes = [len(b) for b in documents.batches(300, 10, 1000)]
    assert sum(sizes) == 990 and max(sizes) == 300 and len(sizes) == 4
    assert documents.fingerprint() == cache.corpus_fingerprint(ids, joined)


def test_kept_rows_are_read_in_order_and_travel_as_plain_data(tmp_path):
    ids, titles, texts = _table(tmp_path / "docs.parquet")
    keep = np.array([i for i in range(N) if i % 5 and i != 999])
    corpus = Corpus(DocumentTable(tmp_path / "docs.parquet"), keep)
    assert len(corpus) == len(keep) and corpus.ids == [ids[i] for i in keep]
    assert corpus.texts == [texts[i] for i in keep]
    sub = corpus.select([0, 1, 500, 700])
    assert sub.ids == [ids[keep[j]] for j in (0, 1, 500, 700)] and sub.titles == [titles[keep[j]] for j in (0, 1, 500, 700)]
    documents = corpus.documents(("text",), " ")
    assert documents.texts(100, 300) == [texts[i] for i in keep[100:300]]
    again = pickle.loads(pickle.dumps(documents))
    assert again.texts(100, 300) == documents.texts(100, 300) and again.ids == documents.ids
    assert again.corpus.rows.tolist() == keep.tolist()
    assert len(pickle.dumps(documents)) < 10_000  # the file's path and the kept rows, no texts
    few = Corpus(DocumentTable(tmp_path / "docs.parquet"), np.delete(np.arange(N), [3, 500]))
    assert len(pickle.dumps(few)) < 1_500  # three runs of rows, not a thousand numbers
    assert pickle.loads(pickle.dumps(few)).rows.tolist() == np.delete(np.arange(N), [3, 500]).tolist()


def test_documents_held_as_lists_give_the_same_fingerprint():
    documents = Documents.from_lists(["a", "b"], ["x", "y"])
    assert documents.texts() == ["x", "y"] and documents.fingerprint() == cache.corpus_fingerprint(["a", "b"], ["x", "y"])
    assert Documents.from_lists(["a", "b"], ["x", "y "]).fingerprint() != documents.fingerprint()


def test_length_sorted_batches_stay_within_their_budget_and_a_long_text_is_alone():
    lengths = [8192, 12, 300, 299, 8, 4000, 4100, 7, 300]
    batches = list(length_sorted_batches(lengths, 4096))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert longest * len(batch) <= 4096 or len(batch) == 1
    assert [8192] in [[lengths[i] for i in b] for b in batches]  # never padded with others to 8,192
    assert [len(b) for b in length_sorted_batches([5] * 10, 4096, max_count=4)] == [4, 4, 2]
