"""Thai: dictionary-based word segmentation with PyThaiNLP.

Thai writes no spaces between words. Pyserini's MIRACL/Mr.TyDi baselines use Lucene's
ThaiAnalyzer, which segments with a dictionary-driven word-break iterator; PyThaiNLP's ``newmm``
(maximal matching over its Thai word list, the library's default) is the maintained Python
equivalent. ``newmm-safe`` is the same algorithm with a guard against very long ambiguous runs.
Texts are not NFKC-normalised: NFKC splits SARA AM (ำ) into two characters, which the dictionary
does not know.
"""

from __future__ import annotations

from typing import Any

import regex

from harness.text.base import TextByTextAnalyzer, require, versions

ENGINE = "newmm-safe"
_WORD = regex.compile(r"\w+")


class ThaiAnalyzer(TextByTextAnalyzer):
    name = "th-newmm"

    def __init__(self, language: str | None = "th", *, lowercase: bool = True):
        tokenize = require("pythainlp.tokenize", "BM25 for Thai", "pythainlp")
        self._word_tokenize = tokenize.word_tokenize
        self.language, self.lowercase = language, lowercase

    def tokens(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        words = self._word_tokenize(text, engine=ENGINE, keep_whitespace=False)
        # Segments may be punctuation, or carry it ("ค.ศ."): keep the word characters, as terms.
        return [t for w in words for t in _WORD.findall(w)]

    def describe(self) -> dict[str, Any]:
        return self._description(
            segmentation=f"pythainlp {ENGINE} (dictionary maximal matching), then word characters",
            normalization=None,
            stopwords=None,
            stemmer=None,
            libraries=versions("pythainlp", "regex"),
        )
