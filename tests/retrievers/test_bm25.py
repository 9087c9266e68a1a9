import pytest

from harness.retrievers.bm25 import BM25Retriever


def test_tokenizer_lowercases_stems_drops_lucene_stopwords_keeps_single_chars():
    bm25 = BM25Retriever()
    assert bm25.tokenize(["The Running of a T cell in 3 Studies"]) == [["run", "t", "cell", "3", "studi"]]
    assert BM25Retriever(stemmer=None, stopwords=None).tokenize(["The cells"]) == [["the", "cells"]]
    assert BM25Retriever(stemmer="english").tokenize(["generously"]) == [["generous"]]


CORPUS_IDS = ["a", "b", "c", "d"]
CORPUS = ["vitamin d deficiency and bone density", "bone fractures in elderly patients",
          "deep learning for protein folding", "vitamin c and the common cold"]


def test_search_ranks_by_bm25_and_leaves_out_non_matching_documents():
    bm25 = BM25Retriever()
    bm25.index(CORPUS_IDS, CORPUS)
    run = bm25.search(["q1", "q2", "q3"], ["vitamin d bone", "protein", "the of and"], k=10)
    assert [d for d, _ in run["q1"]][0] == "a"
    assert set(d for d, _ in run["q1"]) == {"a", "b", "d"}
    assert [d for d, _ in run["q2"]] == ["c"]
    assert run["q3"] == []  # only stop words: nothing to match


def test_scores_follow_the_lucene_bm25_formula():
    import math

    bm25 = BM25Retriever(k1=0.9, b=0.4)
    bm25.index(CORPUS_IDS, CORPUS)
    (doc, score), = bm25.search(["q"], ["protein"], k=10)["q"]
    n, df = 4, 1
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    lengths = [len(t) for t in bm25.tokenize(CORPUS)]
    avg = sum(lengths) / n
    tf, dl = 1, lengths[2]
    expected = idf * tf / (tf + 0.9 * (1 - 0.4 + 0.4 * dl / avg))
    assert doc == "c" and score == pytest.approx(expected, rel=1e-5)


def test_k_is_capped_at_corpus_size_and_rerank_scores_only_candidates():
    bm25 = BM25Retriever()
    bm25.index(CORPUS_IDS, CORPUS)
    assert len(bm25.search(["q"], ["vitamin bone cold"], k=1000)["q"]) == 3
    run = bm25.rerank(["q"], ["vitamin bone"], {"q": ["c", "d", "a", "unknown"]})
    assert [d for d, _ in run["q"]] == ["a", "d", "c"]
    assert dict(run["q"])["c"] == 0.0


def test_settings_describe_the_tokenizer():
    settings = BM25Retriever().settings()
    assert settings["bm25"] == {"method": "lucene", "k1": 0.9, "b": 0.4}
    assert settings["tokenizer"]["stemmer"] == "pystemmer:porter"
    assert settings["tokenizer"]["pattern"] == r"(?u)\b\w+\b"
