import logging
import subprocess
import sys
from importlib import metadata

import pytest

from harness.errors import UnknownNameError
from harness.pipeline import Unit, execute
from harness.results import load_record
from harness.retrievers.bm25 import BM25Retriever
from tests.conftest import REPO, SCIFACT_SUITE


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


# --- Language-aware analysis -----------------------------------------------------------------------

@pytest.mark.parametrize("language, analyzer, stemmer, stopwords", [
    ("en", "words", "pystemmer:porter", {"list": "bm25s:en", "size": 33}),
    ("de", "words", "pystemmer:german", {"list": "bm25s:de", "size": 232}),
    ("ru", "words", "pystemmer:russian", {"list": "bm25s:ru", "size": 151}),
    ("ar", "words", "pystemmer:arabic", None),
    ("sw", "words", None, None),
    ("ja", "ja-sudachi", None, {"parts_of_speech": ["助詞", "助動詞", "補助記号", "空白", "接続詞"]}),
    ("zh", "cjk-bigrams", None, None),
    ("ko", "cjk-bigrams", None, None),
    ("th", "th-newmm", None, None),
])
def test_auto_language_follows_the_dataset_and_settings_record_the_analyzer(language, analyzer, stemmer, stopwords):
    bm25 = BM25Retriever()
    bm25.set_language(language)
    settings = bm25.settings()
    assert settings["language"] == {"requested": "auto", "dataset": language}
    tokenizer = settings["tokenizer"]
    assert (tokenizer["analyzer"], tokenizer["language"]) == (analyzer, language)
    assert tokenizer["stemmer"] == stemmer and tokenizer["stopwords"] == stopwords
    assert settings["implementation"] == {"bm25s": metadata.version("bm25s")}


def test_beir_params_keep_the_english_analyser_and_a_retriever_without_language_is_english():
    beir = BM25Retriever(k1=0.9, b=0.4, stemmer="porter", stopwords="en")
    beir.set_language("en")
    plain = BM25Retriever()
    assert beir.settings()["tokenizer"] == plain.settings()["tokenizer"]
    assert plain.settings()["tokenizer"]["segmentation"] == "regex re"
    assert plain.settings()["language"] == {"requested": "auto", "dataset": None}


def test_an_explicit_language_wins_over_the_datasets(caplog):
    bm25 = BM25Retriever(language="ja")
    with caplog.at_level(logging.WARNING, logger="harness.retrievers.bm25"):
        bm25.set_language("en")
    assert "the dataset's language is 'en', but the retriever analyses 'ja'" in caplog.text
    assert bm25.settings()["tokenizer"]["analyzer"] == "ja-sudachi"
    assert BM25Retriever(language="words").tokenize(["Das Haus"]) == [["das", "haus"]]


def test_unknown_languages_and_english_params_on_japanese_are_refused():
    with pytest.raises(UnknownNameError, match="No BM25 analyser for language 'xx'"):
        BM25Retriever(language="xx")
    bm25 = BM25Retriever(stemmer="porter", stopwords="en")
    with pytest.raises(UnknownNameError, match="stemmer, stopwords apply to word analysers"):
        bm25.set_language("ja")


JA_IDS = ["tokyo", "kyoto", "fuji", "osaka"]
JA_CORPUS = [
    "東京タワーは東京都港区にある電波塔で、1958年に完成した。",
    "金閣寺は京都市北区にある寺院で、室町時代に足利義満が建てた。",
    "富士山は静岡県と山梨県にまたがる日本で一番高い山である。",
    "大阪城は豊臣秀吉が築いた城で、大阪市中央区にある。",
]
JA_QUERIES = {"q1": "東京タワーはいつ完成しましたか？", "q2": "金閣寺を建てたのは誰？",
              "q3": "日本で一番高い山は？", "q4": "大阪城を築いたのは誰ですか"}
JA_ANSWERS = {"q1": "tokyo", "q2": "kyoto", "q3": "fuji", "q4": "osaka"}


def test_japanese_bm25_ranks_a_japanese_corpus_where_whitespace_tokens_match_nothing():
    words = BM25Retriever(language="words")  # no spaces in Japanese: each clause is one "word"
    words.index(JA_IDS, JA_CORPUS)
    assert words.tokenize([JA_QUERIES["q1"]]) == [["東京タワーはいつ完成しましたか"]]
    run = words.search(list(JA_QUERIES), list(JA_QUERIES.values()), k=10)
    assert all(run[q] == [] for q in JA_QUERIES)

    bm25 = BM25Retriever()
    bm25.set_language("ja")
    bm25.index(JA_IDS, JA_CORPUS)
    assert bm25.tokenize([JA_QUERIES["q2"]]) == [["金閣", "寺", "建てる", "誰"]]  # 建てた -> 建てる, as in the document
    run = bm25.search(list(JA_QUERIES), list(JA_QUERIES.values()), k=10)
    assert {q: run[q][0][0] for q in JA_QUERIES} == JA_ANSWERS
    assert [d for d, _ in run["q1"]] == ["tokyo"]  # 東京, タワー, 完成 occur in no other document


def test_english_bm25_works_without_the_multilingual_packages():
    code = (
        "import sys\n"
        "sys.modules.update(dict.fromkeys(['sudachipy', 'sudachidict_core', 'pythainlp']))  # as if not installed\n"
        "from harness.retrievers.bm25 import BM25Retriever\n"
        "bm25 = BM25Retriever()\n"
        "bm25.set_language('en')\n"
        "bm25.index(['a', 'b'], ['vitamin d and bone density', 'protein folding'])\n"
        "print([d for d, _ in bm25.search(['q'], ['bone vitamins'], k=10)['q']])\n"
        "try:\n"
        "    BM25Retriever().set_language('ja')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    lines = out.stdout.splitlines()
    assert lines[0] == "['a']", out.stderr
    assert lines[1].startswith("MissingDependencyError BM25 for Japanese needs SudachiPy")
    assert "`pip install late-interaction-harness[multilingual]`" in lines[1]


class RecordingBM25(BM25Retriever):
    """A first stage that remembers the languages the pipeline gave it."""

    languages: list[str] = []

    def set_language(self, language: str) -> None:
        RecordingBM25.languages.append(language)
        super().set_language(language)


def test_the_pipeline_gives_the_suites_language_to_both_stages(offline, tmp_path):
    suite = SCIFACT_SUITE.read_text().split("retrievers:")[0].replace("language: en", "language: de")
    assert "language: de" in suite
    path = tmp_path / "suite.yaml"
    path.write_text(
        suite + "  scifact-rerank:\n    source: {kind: ir_datasets, id: beir/scifact/test}\n"
        "    mode: rerank\n    candidates: {source: retriever, retriever: first, depth: 20}\n"
        "retrievers:\n  bm25: {class: bm25}\n  first: {class: tests.retrievers.test_bm25:RecordingBM25}\n")
    RecordingBM25.languages.clear()
    outcome = execute(Unit(str(path), "scifact-rerank", "bm25", sample=(10, None)), tmp_path / "results")
    assert RecordingBM25.languages == ["de"]
    system = load_record(outcome.folder).protocol["system"]
    assert system["language"] == {"requested": "auto", "dataset": "de"}
    assert system["tokenizer"]["stemmer"] == "pystemmer:german"


def tied_corpus(seed: int = 0) -> tuple[list[str], list[str]]:
    """Two groups of 15 identical texts (each group ties on any query) and 10 other documents,
    under shuffled ids, so that corpus position and trec_eval's id order differ."""
    import random

    texts = ["vitamin d and bone density"] * 15 + ["vitamin c in winter"] * 15 + [f"protein folding {i}" for i in range(10)]
    ids = [f"doc{n:03d}" for n in random.Random(seed).sample(range(1000), len(texts))]
    return ids, texts


def test_ties_at_the_depth_cut_fall_in_trec_eval_order():
    ids, texts = tied_corpus()
    bm25 = BM25Retriever()
    bm25.index(ids, texts)
    full = bm25.search(["q"], ["vitamin bone"], k=1000)["q"]
    assert len({s for _, s in full}) == 2  # two groups of tied scores
    for k in (7, 15, 22, 29):  # inside the first group, at its end, inside the second
        assert bm25.search(["q"], ["vitamin bone"], k=k)["q"] == full[:k], k


def test_empty_documents_are_indexed_and_never_retrieved():
    bm25 = BM25Retriever()
    bm25.index(["a", "b", "c"], ["vitamin d bone", "", "bone cold"])
    assert [d for d, _ in bm25.search(["q"], ["bone"], k=10)["q"]] == ["c", "a"]
    assert bm25.rerank(["q"], ["bone"], {"q": ["b"]})["q"] == [("b", 0.0)]
    nothing = BM25Retriever()
    nothing.index(["a", "b"], ["", "the of"])  # not one term in the corpus: bm25s cannot index it
    assert nothing.search(["q"], ["bone"], k=10)["q"] == []
    assert nothing.rerank(["q"], ["bone"], {"q": ["a"]})["q"] == [("a", 0.0)]
