"""Text analysis for lexical retrieval: one analyser per language family, chosen by language code.

``analyzer_for("ja")`` -> Japanese words (SudachiPy), ``"zh"``/``"ko"`` -> CJK bigrams, ``"th"`` ->
Thai words (PyThaiNLP), Snowball languages -> Unicode words + stop words + stemmer, ``"en"`` ->
Pyserini's BEIR analyser. The Japanese and Thai packages come with the ``multilingual`` extra.
"""

from harness.text.base import MULTILINGUAL_INSTALL, Analyzer
from harness.text.languages import ANALYZERS, AUTO, PROFILES, analyzer_for, language_code, resolve

__all__ = ["Analyzer", "ANALYZERS", "AUTO", "MULTILINGUAL_INSTALL", "PROFILES", "analyzer_for", "language_code",
           "resolve"]
