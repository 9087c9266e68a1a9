"""Word analysers for languages that separate words with spaces: a token pattern, lower-casing,
stop words (bm25s's lists) and a Snowball stemmer (PyStemmer).

Two regular-expression engines, on purpose:

- English keeps Python's ``re`` and Lucene's pattern ``(?u)\\b\\w+\\b``, so its tokens are exactly
  those of ``bm25s.tokenize`` (the BEIR baseline numbers depend on them).
- Every other language uses the ``regex`` package, whose ``\\w`` includes combining marks. With
  ``re``, Devanagari vowel signs, Bengali/Telugu marks, Arabic harakat or a Russian stress accent
  end a "word" (``re`` splits "कांग्रेस" into four pieces); Lucene's UAX#29 tokenizer keeps them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Sequence

import regex

from harness.errors import UnknownNameError
from harness.text.base import Analyzer, versions

LUCENE_TOKEN_PATTERN = r"(?u)\b\w+\b"
UNICODE_WORD_PATTERN = r"\w+"
ENGINES = {"re": re.compile, "regex": regex.compile}

# bm25s's stop-word lists (NLTK's, and Lucene's 33 English words), by language code.
BM25S_STOPWORDS = {
    "en": "STOPWORDS_EN", "de": "STOPWORDS_GERMAN", "nl": "STOPWORDS_DUTCH", "fr": "STOPWORDS_FRENCH",
    "es": "STOPWORDS_SPANISH", "pt": "STOPWORDS_PORTUGUESE", "it": "STOPWORDS_ITALIAN",
    "ru": "STOPWORDS_RUSSIAN", "sv": "STOPWORDS_SWEDISH", "no": "STOPWORDS_NORWEGIAN",
    "nb": "STOPWORDS_NORWEGIAN", "tr": "STOPWORDS_TURKISH", "da": "STOPWORDS_DANISH",
}


def stopword_list(stopwords: str | Sequence[str] | None) -> tuple[str | None, frozenset[str]]:
    """(name for the card, the words): a bm25s list by language code, a list of words, or none."""
    if stopwords is None:
        return None, frozenset()
    if isinstance(stopwords, str):
        if stopwords not in BM25S_STOPWORDS:
            raise UnknownNameError(
                f"Unknown stop-word list {stopwords!r}. bm25s has lists for: {', '.join(sorted(BM25S_STOPWORDS))}; "
                "give one of these codes, a list of words, or null for none."
            )
        import bm25s.stopwords

        return f"bm25s:{stopwords}", frozenset(getattr(bm25s.stopwords, BM25S_STOPWORDS[stopwords]))
    return "custom", frozenset(stopwords)


def snowball_stemmer(name: str):
    import Stemmer

    if name not in Stemmer.algorithms():
        raise UnknownNameError(
            f"Unknown stemmer {name!r}. PyStemmer {versions('PyStemmer')['PyStemmer']} has: "
            f"{', '.join(Stemmer.algorithms())}; give one of these, or null for no stemming."
        )
    return Stemmer.Stemmer(name)


class WordAnalyzer(Analyzer):
    """Normalise, lower-case, split by a pattern, drop stop words, then stem (Lucene's order)."""

    name = "words"

    def __init__(self, language: str | None = None, *, pattern: str = UNICODE_WORD_PATTERN, engine: str = "regex",
                 stemmer: str | None = None, stopwords: str | Sequence[str] | None = None,
                 lowercase: bool = True, normalization: str | None = "NFKC", remove: str = ""):
        self.language, self.pattern, self.engine = language, pattern, engine
        self.lowercase, self.normalization, self.remove = lowercase, normalization, remove
        self._removal = str.maketrans("", "", remove)
        self.stemmer_name = stemmer
        self.stopwords_name, self.stopwords = stopword_list(stopwords)
        self._split = ENGINES[engine](pattern).findall
        self._stemmer = snowball_stemmer(stemmer) if stemmer else None

    def analyze(self, texts: Sequence[str]) -> list[list[str]]:
        docs = []
        for text in texts:
            if self.remove:  # before normalisation, which could compose a mark into its letter
                text = text.translate(self._removal)
            if self.normalization:
                text = unicodedata.normalize(self.normalization, text)
            if self.lowercase:
                text = text.lower()
            docs.append([t for t in self._split(text) if t not in self.stopwords])
        if self._stemmer is None:
            return docs
        # Stem each distinct word once, as bm25s.tokenize does.
        vocab = list({t: None for doc in docs for t in doc})
        stems = dict(zip(vocab, self._stemmer.stemWords(vocab)))
        return [[stems[t] for t in doc] for doc in docs]

    def describe(self) -> dict[str, Any]:
        stopwords: dict[str, Any] | None = None
        if self.stopwords_name is not None:
            stopwords = {"list": self.stopwords_name, "size": len(self.stopwords)}
            if self.stopwords_name == "custom":  # the words themselves, so that the card tells lists apart
                stopwords["words"] = sorted(self.stopwords)
        libraries = versions("regex") if self.engine == "regex" else {}
        if self._stemmer is not None:
            libraries.update(versions("PyStemmer"))
        if self.stopwords_name and self.stopwords_name.startswith("bm25s:"):
            libraries.update(versions("bm25s"))
        return {
            "analyzer": self.name,
            "language": self.language,
            "segmentation": f"regex {self.engine}",
            "pattern": self.pattern,
            "normalization": self.normalization,
            "removed": [f"U+{ord(c):04X}" for c in self.remove],
            "lowercase": self.lowercase,
            "stopwords": stopwords,
            "stemmer": f"pystemmer:{self.stemmer_name}" if self.stemmer_name else None,
            "libraries": libraries,
        }
