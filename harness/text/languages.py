"""Which analyser each language gets: the one place that maps a language code to text processing.

The choices follow Pyserini's MIRACL / Mr.TyDi BM25 baselines (Lucene's per-language analysers)
where a Python library does the same job: Snowball stemmers for the languages Lucene stems,
Kuromoji-like morphology for Japanese, CJK bigrams for Chinese and Korean, dictionary word
segmentation for Thai, and plain Unicode words for the languages Lucene has no analyser for.
English keeps Pyserini's BEIR analyser exactly (Lucene's token pattern, 33 stop words, Porter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from harness.errors import UnknownNameError
from harness.text.base import Analyzer
from harness.text.cjk import CJKBigramAnalyzer
from harness.text.words import LUCENE_TOKEN_PATTERN, UNICODE_WORD_PATTERN, WordAnalyzer

AUTO = "auto"  # a parameter left to the language's own choice


@dataclass(frozen=True)
class Profile:
    code: str
    name: str
    analyzer: str  # one of ANALYZERS
    stemmer: str | None = None  # PyStemmer algorithm
    stopwords: str | None = None  # bm25s list
    # The rest apply to word analysers only.
    pattern: str = UNICODE_WORD_PATTERN
    engine: str = "regex"
    normalization: str | None = "NFKC"
    remove: str = ""  # characters deleted before normalisation


# Russian and Ukrainian texts mark stress with combining accents (MIRACL's "Кари́бский кризис") that
# ordinary spelling, and so most documents, leave out; deleting them lets the two spellings match.
STRESS_MARKS = "\u0300\u0301"


def _snowball(code: str, name: str, stopwords: bool = False, remove: str = "") -> Profile:
    return Profile(code, name, "words", stemmer=name.lower(), stopwords=code if stopwords else None, remove=remove)


PROFILES: dict[str, Profile] = {p.code: p for p in [
    Profile("en", "English", "words", stemmer="porter", stopwords="en", pattern=LUCENE_TOKEN_PATTERN, engine="re",
            normalization=None),
    _snowball("ar", "Arabic"), _snowball("hy", "Armenian"), _snowball("eu", "Basque"), _snowball("ca", "Catalan"),
    _snowball("cs", "Czech"), _snowball("da", "Danish", True), _snowball("nl", "Dutch", True),
    _snowball("eo", "Esperanto"), _snowball("et", "Estonian"), _snowball("fi", "Finnish"),
    _snowball("fr", "French", True), _snowball("de", "German", True), _snowball("el", "Greek"),
    _snowball("hi", "Hindi"), _snowball("hu", "Hungarian"), _snowball("id", "Indonesian"), _snowball("ga", "Irish"),
    _snowball("it", "Italian", True), _snowball("lt", "Lithuanian"), _snowball("ne", "Nepali"),
    _snowball("no", "Norwegian", True), Profile("nb", "Norwegian", "words", stemmer="norwegian", stopwords="nb"),
    _snowball("fa", "Persian"), _snowball("pl", "Polish"), _snowball("pt", "Portuguese", True),
    _snowball("ro", "Romanian"), _snowball("ru", "Russian", True, STRESS_MARKS), _snowball("sr", "Serbian"),
    _snowball("st", "Sesotho"), _snowball("es", "Spanish", True), _snowball("sv", "Swedish", True),
    _snowball("ta", "Tamil"), _snowball("tr", "Turkish", True), _snowball("yi", "Yiddish"),
    # No stemmer in Snowball (Pyserini: Lucene's Bengali/Telugu analysers, whitespace for sw and yo).
    *(Profile(c, n, "words") for c, n in [("bn", "Bengali"), ("he", "Hebrew"), ("ms", "Malay"), ("sw", "Swahili"),
                                          ("te", "Telugu"), ("ur", "Urdu"), ("vi", "Vietnamese"), ("yo", "Yoruba")]),
    Profile("uk", "Ukrainian", "words", remove=STRESS_MARKS),
    Profile("ja", "Japanese", "ja-sudachi"),
    Profile("zh", "Chinese", "cjk-bigrams"),
    Profile("ko", "Korean", "cjk-bigrams"),
    Profile("th", "Thai", "th-newmm"),
]}

# Analysers by name, for a retriever that names one instead of a language.
ANALYZERS = {
    "words": "Unicode words, lower-cased (stemmer and stop words only if given)",
    "cjk-bigrams": "overlapping bigrams of CJK characters (Lucene's CJKAnalyzer)",
    "ja-sudachi": "Japanese words by SudachiPy (split mode A, dictionary forms)",
    "th-newmm": "Thai words by PyThaiNLP newmm",
}


def language_code(language: str) -> str:
    """'pt-BR', 'zh_Hant', 'JA' -> 'pt', 'zh', 'ja': the analyser depends on the language alone."""
    return language.strip().lower().replace("_", "-").split("-")[0]


def resolve(language: str) -> tuple[str | None, str]:
    """A language code or an analyser name -> (language code or None, analyser name)."""
    if language in ANALYZERS:
        return None, language
    code = language_code(language)
    if code in PROFILES:
        return code, PROFILES[code].analyzer
    raise UnknownNameError(
        f"No BM25 analyser for language {language!r}. Known languages: {', '.join(sorted(PROFILES))}. "
        f"Name an analyser instead (`language: words` for lower-cased Unicode words, or one of "
        f"{', '.join(sorted(ANALYZERS))}) in the retriever's params."
    )


def analyzer_for(language: str, *, stemmer: Any = AUTO, stopwords: Any = AUTO, token_pattern: Any = AUTO,
                 lowercase: bool = True) -> Analyzer:
    """The analyser for a language code (or analyser name); ``stemmer``, ``stopwords`` and
    ``token_pattern`` replace the language's own choices and apply to word analysers only."""
    code, name = resolve(language)
    profile = PROFILES.get(code) if code else None
    overrides = {k: v for k, v in [("stemmer", stemmer), ("stopwords", stopwords), ("token_pattern", token_pattern)]
                 if v != AUTO}
    if name != "words":
        if overrides:
            raise UnknownNameError(
                f"BM25 parameter(s) {', '.join(sorted(overrides))} apply to word analysers, but language {language!r} "
                f"uses the {name!r} analyser ({ANALYZERS[name]}), which has none: remove them from the retriever's "
                "params, or set `language` to a language that separates words with spaces."
            )
        if name == "cjk-bigrams":
            return CJKBigramAnalyzer(code, lowercase=lowercase)
        if name == "ja-sudachi":
            from harness.text.japanese import SudachiAnalyzer

            return SudachiAnalyzer(code or "ja", lowercase=lowercase)
        from harness.text.thai import ThaiAnalyzer

        return ThaiAnalyzer(code or "th", lowercase=lowercase)
    profile = profile or Profile("", "", "words")
    return WordAnalyzer(
        code,
        pattern=overrides.get("token_pattern", profile.pattern),
        engine=profile.engine,
        stemmer=overrides.get("stemmer", profile.stemmer),
        stopwords=_as_list(overrides.get("stopwords", profile.stopwords)),
        lowercase=lowercase,
        normalization=profile.normalization,
        remove=profile.remove,
    )


def _as_list(stopwords: Any) -> str | Sequence[str] | None:
    return list(stopwords) if isinstance(stopwords, (list, tuple, set, frozenset)) else stopwords

