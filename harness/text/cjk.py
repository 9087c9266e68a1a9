"""Overlapping character bigrams for Chinese and Korean, as Lucene's CJKAnalyzer makes them.

Pyserini's MIRACL and Mr.TyDi BM25 baselines index Chinese and Korean with CJKAnalyzer: width
folding, lower-casing, then every run of Han/Hiragana/Katakana/Hangul characters becomes its
overlapping bigrams ("意大利首都" -> 意大 大利 利首 首都), a lone character stays a unigram, and
other words (Latin, digits) stay whole. Bigrams need no dictionary and match any compound a
segmenter would split differently. No Python library reproduces Lucene's filter, hence these
few lines. Lucene's analyser also drops ~30 English stop words; this one keeps every term.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import regex

from harness.text.base import TextByTextAnalyzer, versions

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ー"  # ー (U+30FC) is script Common, Katakana for UAX#29
_RUNS = regex.compile(rf"(?P<cjk>[{_CJK}]+)|[^\W{_CJK}]+")


class CJKBigramAnalyzer(TextByTextAnalyzer):
    name = "cjk-bigrams"

    def __init__(self, language: str | None = None, *, lowercase: bool = True):
        self.language, self.lowercase = language, lowercase

    def tokens(self, text: str) -> list[str]:
        # NFKC folds full-width Latin and half-width katakana, as Lucene's CJKWidthFilter does.
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        out: list[str] = []
        for m in _RUNS.finditer(text):
            run = m.group()
            if m.group("cjk") and len(run) > 1:
                out.extend(run[i:i + 2] for i in range(len(run) - 1))
            else:
                out.append(run)
        return out

    def describe(self) -> dict[str, Any]:
        return self._description(
            segmentation="overlapping bigrams of Han/Hiragana/Katakana/Hangul runs (Lucene CJKAnalyzer); "
                         "other words whole",
            normalization="NFKC",
            stopwords=None,
            stemmer=None,
            libraries=versions("regex"),
        )
