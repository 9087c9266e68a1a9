"""Language analysers on real queries: MIRACL dev topics (ja, zh, th, ko, de, ru, es, hi) and the
BEIR test topics, from the reference files in ../shared/data/reference."""

from __future__ import annotations

import gzip
import statistics
import sys
import unicodedata
from importlib import metadata

import pytest

from harness.errors import MissingDependencyError, UnknownNameError
from harness.text import analyzer_for
from harness.text.japanese import MAX_CHARS, chunks
from tests.conftest import SHARED, require_shared

REFERENCE = SHARED / "data" / "reference"


def miracl_topics(language: str) -> dict[str, str]:
    path = require_shared("data", "reference", "miracl", f"topics.miracl-v1.0-{language}-dev.tsv")
    with path.open(encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("\t", 1) for line in f)


def analyzed(language: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    topics = miracl_topics(language)
    tokens = analyzer_for(language).analyze(list(topics.values()))
    return topics, dict(zip(topics, tokens))


# --- Japanese: SudachiPy words -------------------------------------------------------------------

JAPANESE = {  # MIRACL ja dev query id -> its words
    "3": ["日本", "テレビ", "系列", "zip", "初代", "司会", "誰"],  # 日本テレビ系列『ZIP!』の初代の司会は誰ですか？
    "7": ["ジョージ", "ローレンス", "マイカン", "いつ", "生まれる"],  # ジョージ・ローレンス・マイカンはいつ生まれた？
    "12": ["日本", "ボクシング", "コミッション", "設立", "する", "いつ"],  # 日本ボクシングコミッションが設立したのはいつ
    "22": ["スポーツ", "おく", "ドーピング", "検査", "始まる", "いつ"],  # スポーツにおけるドーピング検査が始まったのはいつ
    "91": ["the", "klf", "デビュー", "曲", "何"],  # The KLFのデビュー曲は何
    "122": ["pl", "学園", "野球", "部", "なぜ", "廃止", "する"],  # ＰＬ学園の野球部はなぜ廃止された？
}


def test_japanese_queries_are_segmented_into_dictionary_form_words():
    topics, tokens = analyzed("ja")
    assert topics["12"] == "日本ボクシングコミッションが設立したのはいつ"
    for qid, words in JAPANESE.items():
        assert tokens[qid] == words, topics[qid]


def test_japanese_token_distribution_over_all_miracl_queries():
    topics, tokens = analyzed("ja")
    assert len(topics) == 860
    terms = [t for ts in tokens.values() for t in ts]
    assert all(tokens.values())  # every query keeps some words
    # Words, not characters (share of one-character terms would be ~1, mean length 1) nor whole
    # sentences (no term is a whole query; a query averages ~15 characters).
    assert 0.08 < sum(len(t) == 1 for t in terms) / len(terms) < 0.25
    assert 2.0 < statistics.mean(len(t) for t in terms) < 3.5
    assert 4 < len(terms) / len(topics) < 8
    assert not any(topics[q] in ts or len(max(ts, key=len)) >= len(topics[q]) - 2 for q, ts in tokens.items())
    # Particles, auxiliary verbs and punctuation are dropped; inflected verbs are in base form.
    assert not {"は", "の", "が", "を", "に", "た", "です", "？", "、", "・"} & set(terms)
    # (生まれ stays where it is the noun "birth": 宮崎龍介は何年生まれ？)
    assert {"生まれる", "始まる", "起きる"} <= set(terms) and not {"始まっ", "起き", "生まれた"} & set(terms)


def test_japanese_long_texts_are_cut_under_sudachis_input_limit():
    sentence = "東京タワーは東京都港区にある電波塔です。"
    text = sentence * 3000  # 60,000 characters: ~180,000 bytes, over Sudachi's 49,149-byte limit
    pieces = list(chunks(text))
    assert "".join(pieces) == text and all(len(p) <= MAX_CHARS for p in pieces) and len(pieces) == 5
    assert all(p.endswith("。") for p in pieces)
    unbroken = "あ" * 30_000
    assert [len(p) for p in chunks(unbroken)] == [12_000, 12_000, 6_000]
    analyzer = analyzer_for("ja")
    one = analyzer.analyze([sentence])[0]
    assert one == ["東京", "タワー", "東京", "都", "港", "区", "ある", "電波", "塔"]
    assert analyzer.analyze([text])[0] == one * 3000


def test_japanese_description_names_library_dictionary_and_mode():
    d = analyzer_for("ja").describe()
    assert d["analyzer"] == "ja-sudachi" and d["language"] == "ja"
    assert d["segmentation"] == "sudachi split mode A"
    assert d["libraries"]["SudachiPy"] == metadata.version("SudachiPy")
    assert d["libraries"]["sudachidict-core"] == metadata.version("sudachidict-core")
    assert d["stopwords"] == {"parts_of_speech": ["助詞", "助動詞", "補助記号", "空白", "接続詞"]}


# --- Chinese and Korean: CJK bigrams ----------------------------------------------------------------

def test_chinese_queries_become_overlapping_bigrams_with_latin_and_digits_whole():
    topics, tokens = analyzed("zh")
    assert tokens["3965848#0"] == ["意大", "大利", "利首", "首都", "都是", "是哪", "哪里"]  # 意大利首都是哪里？
    assert tokens["1473972#0"] == ["珠海", "海市", "市人", "人均", "gdp", "多少"]  # 珠海市人均GDP多少？
    assert tokens["6879435#0"][:3] == ["2022", "年冬", "冬奥"]  # 2022年冬奥会举办城市是哪里？
    han = [t for ts in tokens.values() for t in ts if unicodedata.name(t[0]).startswith("CJK")]
    assert han and all(len(t) == 2 for t in han)
    # Nothing is lost: every Han character of every query is in one of its terms; no punctuation.
    assert all({c for c in topics[q] if unicodedata.name(c, "").startswith("CJK UNIFIED")} <= set("".join(ts))
               for q, ts in tokens.items())
    assert not any(c in t for ts in tokens.values() for t in ts for c in "？?，、。")


def test_korean_queries_become_bigrams_within_each_spaced_word():
    _, tokens = analyzed("ko")
    assert tokens["4"] == ["룩셈", "셈부", "부르", "르크", "크의", "수도", "도는", "어디", "디인", "인가"]
    assert analyzer_for("ko").analyze(["나폴레옹 1세는 언제 황제로 즉위하나요?"])[0] == [
        "나폴", "폴레", "레옹", "1", "세는", "언제", "황제", "제로", "즉위", "위하", "하나", "나요"]


# --- Thai: PyThaiNLP words ------------------------------------------------------------------------

def test_thai_queries_are_segmented_into_dictionary_words():
    topics, tokens = analyzed("th")
    assert tokens["29"] == ["ค", "ศ", "1951", "ใคร", "เป็น", "นายกรัฐมนตรี", "ของ", "อังกฤษ"]
    assert tokens["20"] == ["คอ", "เคลีย", "เต็มไปด้วย", "น้ำ", "ที่", "เรียก", "ว่า", "อะไร"]
    # SARA AM kept as one character (NFKC would split it and break the dictionary lookup)
    assert tokens["24"][:4] == ["ตำนาน", "คน", "ตัด", "ไผ่"]
    terms = [t for ts in tokens.values() for t in ts]
    assert len(topics) == 733 and all(tokens.values())
    assert 3.0 < statistics.mean(len(t) for t in terms) < 7.0
    assert sum(len(t) == 1 for t in terms) / len(terms) < 0.05
    assert not any(" " in t or "?" in t for t in terms)
    assert not any(topics[q].rstrip(" ?") in ts for q, ts in tokens.items())


# --- Word languages: stemming, stop words, marks ------------------------------------------------------

@pytest.mark.parametrize("language, qid, expected", [
    ("de", "5159758#0", ["gross", "grosst", "python"]),  # Wie groß ist der größte Python?
    ("de", "11223503#0", ["beruhmt", "gummiwarenfabr", "deutschland"]),
    ("es", "4607388#0", ["todav", "viking", "groenlandi"]),  # ¿Todavía hay vikingos en Groenlandia?
    ("ru", "0", ["нача", "карибск", "кризис"]),  # Когда начался Кари́бский кризис? (stress mark dropped)
    ("ru", "3", ["как", "расстоян", "коломн", "москв"]),  # Какое расстояние от Коло́мны до Москвы?
    ("hi", "1033752#0", ["कांग्रेस", "दल", "क", "नेत", "कौन", "है"]),  # कांग्रेस दल का नेता कौन है ?
])
def test_snowball_languages_stem_real_queries(language, qid, expected):
    assert analyzer_for(language).analyze([miracl_topics(language)[qid]])[0] == expected


def test_indic_words_keep_their_combining_marks():
    # With Python's `re`, \w stops at vowel signs and viramas: "कांग्रेस" became क, ग, र, स.
    _, tokens = analyzed("hi")
    terms = [t for ts in tokens.values() for t in ts]
    assert not any(unicodedata.category(t[0]).startswith("M") for t in terms)
    assert statistics.mean(len(t) for t in terms) > 3


def test_word_analyzer_descriptions_name_stemmer_and_stop_words():
    de = analyzer_for("de").describe()
    assert de["stemmer"] == "pystemmer:german" and de["stopwords"] == {"list": "bm25s:de", "size": 232}
    assert de["libraries"]["PyStemmer"] == metadata.version("PyStemmer")
    fa = analyzer_for("fa").describe()
    assert fa["stemmer"] == "pystemmer:persian" and fa["stopwords"] is None
    sw = analyzer_for("sw").describe()
    assert sw["stemmer"] is None and sw["stopwords"] is None and sw["pattern"] == r"\w+"
    assert analyzer_for("sw").analyze(["Je, mji mkuu wa Kenya ni upi?"]) == [
        ["je", "mji", "mkuu", "wa", "kenya", "ni", "upi"]]


def test_english_tokens_are_exactly_bm25s_lucene_pattern_tokens_on_all_beir_queries():
    import bm25s
    import Stemmer

    queries = []
    for path in sorted(require_shared("data", "reference", "beir").glob("topics.*.tsv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            queries += [line.rstrip("\n").split("\t", 1)[-1] for line in f]
    assert len(queries) > 40_000 and sum(not q.isascii() for q in queries) > 1000
    reference = bm25s.tokenize(queries, lower=True, stopwords="en", stemmer=Stemmer.Stemmer("porter"),
                               token_pattern=r"(?u)\b\w+\b", return_ids=False, show_progress=False)
    assert analyzer_for("en").analyze(queries) == reference


def test_every_known_language_builds_its_analyser():
    from harness.text import PROFILES

    built = {code: analyzer_for(code) for code in PROFILES}
    assert len(built) == 48 and {"ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw",
                                 "te", "th", "yo", "zh"} <= set(built)  # the 18 MIRACL languages
    # Each stemmer exists in the installed PyStemmer; all lower-case and keep Latin words and digits.
    assert all(a.analyze(["Abc 123"]) == [["abc", "123"]] for a in built.values())


def test_language_tags_reduce_to_their_language():
    assert analyzer_for("pt-BR").describe()["stemmer"] == "pystemmer:portuguese"
    assert analyzer_for("JA").language == "ja"
    assert analyzer_for("zh_Hant").describe()["analyzer"] == "cjk-bigrams"


# --- Errors ---------------------------------------------------------------------------------------

def test_unknown_language_names_it_and_the_way_out():
    with pytest.raises(UnknownNameError) as e:
        analyzer_for("xx")
    assert "No BM25 analyser for language 'xx'" in str(e.value)
    assert "`language: words`" in str(e.value) and "ja, ko" in str(e.value)


def test_unknown_stemmer_or_stop_word_list_or_misplaced_override_is_refused():
    with pytest.raises(UnknownNameError, match="Unknown stemmer 'klingon'.*german"):
        analyzer_for("de", stemmer="klingon")
    with pytest.raises(UnknownNameError, match="Unknown stop-word list 'ja'"):
        analyzer_for("en", stopwords="ja")
    with pytest.raises(UnknownNameError, match=r"stemmer apply to word analysers.*'ja-sudachi'"):
        analyzer_for("ja", stemmer="porter")


@pytest.mark.parametrize("language, modules, package", [
    ("ja", ["sudachipy"], "SudachiPy"),
    ("ja", ["sudachidict_core"], "sudachidict-core"),
    ("th", ["pythainlp", "pythainlp.tokenize"], "pythainlp"),
])
def test_a_missing_language_package_says_which_extra_to_install(monkeypatch, language, modules, package):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError) as e:
        analyzer_for(language)
    assert "pip install late-interaction-harness[multilingual]" in str(e.value)
    assert package in str(e.value)
