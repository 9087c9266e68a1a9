"""Japanese: morphological analysis into words with SudachiPy and its core dictionary.

Japanese has no spaces between words, so a word pattern yields whole sentences and bigrams blur
word boundaries. Pyserini's MIRACL/Mr.TyDi baselines use Lucene's JapaneseAnalyzer (Kuromoji):
search-mode segmentation that splits compounds into short units, base forms of inflected words,
and no particles, auxiliary verbs or punctuation. This analyser does the same with Sudachi:
split mode A (the shortest units: 日本ボクシングコミッション -> 日本 ボクシング コミッション),
each word's dictionary form (生まれ -> 生まれる; it also folds full-width letters and half-width
katakana), and drops the parts of speech that Lucene's stop tags drop.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterator

import regex

from harness.errors import UnknownNameError
from harness.text.base import TextByTextAnalyzer, require, versions

# Particles, auxiliary verbs, punctuation and brackets, whitespace, conjunctions.
STOP_PARTS_OF_SPEECH = ("助詞", "助動詞", "補助記号", "空白", "接続詞")
# Sudachi refuses an input over 49,149 bytes of UTF-8; 12,000 characters are at most 48,000.
MAX_CHARS = 12_000
_SENTENCE_END = re.compile(r"(?<=[。．！？!?\n])")
_WORD = regex.compile(r"\w")
DICTIONARIES = ("core", "small", "full")


def chunks(text: str, limit: int = MAX_CHARS) -> Iterator[str]:
    """The text in pieces of at most ``limit`` characters, cut after sentence ends where possible."""
    if len(text) <= limit:
        yield text
        return
    piece = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:  # one "sentence" longer than the limit: cut it where it must be
            if piece:
                yield piece
                piece = ""
            yield sentence[:limit]
            sentence = sentence[limit:]
        if len(piece) + len(sentence) > limit:
            yield piece
            piece = ""
        piece += sentence
    if piece:
        yield piece


class SudachiAnalyzer(TextByTextAnalyzer):
    name = "ja-sudachi"

    def __init__(self, language: str | None = "ja", *, mode: str = "A", dictionary: str = "core",
                 lowercase: bool = True):
        if mode not in ("A", "B", "C"):
            raise UnknownNameError(f"Unknown Sudachi split mode {mode!r}: choose A (short units), B or C (long).")
        if dictionary not in DICTIONARIES:
            raise UnknownNameError(f"Unknown Sudachi dictionary {dictionary!r}: choose {', '.join(DICTIONARIES)}.")
        sudachipy = require("sudachipy", "BM25 for Japanese", "SudachiPy")
        self._dictionary_package = f"sudachidict-{dictionary}"
        require(f"sudachidict_{dictionary}", "BM25 for Japanese", f"the Sudachi dictionary {self._dictionary_package}")
        self.language, self.mode, self.dictionary, self.lowercase = language, mode, dictionary, lowercase
        self._tokenizer = sudachipy.Dictionary(dict=dictionary).tokenizer(mode=getattr(sudachipy.SplitMode, mode))
        self._dropped: dict[int, bool] = {}  # part-of-speech id -> dropped?

    def _keep(self, morpheme) -> bool:
        pos_id = morpheme.part_of_speech_id()
        dropped = self._dropped.get(pos_id)
        if dropped is None:
            dropped = self._dropped[pos_id] = morpheme.part_of_speech()[0] in STOP_PARTS_OF_SPEECH
        return not dropped

    def tokens(self, text: str) -> list[str]:
        out = []
        for piece in chunks(text):
            for m in self._tokenizer.tokenize(piece):
                if not self._keep(m):
                    continue
                term = unicodedata.normalize("NFKC", m.dictionary_form())
                if self.lowercase:
                    term = term.lower()
                if _WORD.search(term):  # symbols outside the dropped classes (e.g. ＊) are not terms
                    out.append(term)
        return out

    def describe(self) -> dict[str, Any]:
        return self._description(
            segmentation=f"sudachi split mode {self.mode}",
            terms="dictionary form, NFKC",
            normalization="NFKC",
            stopwords={"parts_of_speech": list(STOP_PARTS_OF_SPEECH)},
            stemmer=None,
            libraries=versions("SudachiPy", self._dictionary_package, "regex"),
        )
