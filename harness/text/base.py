"""What every text analyser is: texts in, token lists out, and a description for the protocol card.

An analyser owns everything between a raw text and the terms a lexical index counts: Unicode
normalisation, segmentation, lower-casing, stop words, stemming or lemmatisation. Its
``describe()`` names each of those choices with the library and version that made them, because
any of them changes BM25 scores and so belongs in the card's ``system`` section.
"""

from __future__ import annotations

import abc
import importlib
from importlib import metadata
from types import ModuleType
from typing import Any, Sequence

from harness.errors import MissingDependencyError

MULTILINGUAL_INSTALL = "pip install late-interaction-harness[multilingual]"


class Analyzer(abc.ABC):
    name: str
    language: str | None
    lowercase: bool = True

    @abc.abstractmethod
    def analyze(self, texts: Sequence[str]) -> list[list[str]]:
        """One list of terms per text, in text order."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able: name, language, segmentation, normalisation, stemmer, stop words, libraries."""

    def _description(self, **choices: Any) -> dict[str, Any]:
        """``describe()``'s common fields, then the analyser's own choices."""
        return {"analyzer": self.name, "language": self.language, **choices, "lowercase": self.lowercase}


class TextByTextAnalyzer(Analyzer):
    """An analyser that segments each text on its own (dictionary and rule-based segmenters)."""

    @abc.abstractmethod
    def tokens(self, text: str) -> list[str]: ...

    def analyze(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(language={self.language!r})"


def require(module: str, purpose: str, packages: str) -> ModuleType:
    """Import an optional package, or say which pip extra brings it.

    The language packages (a Japanese dictionary alone is ~190 MB) are optional so that English
    users do not install them; the error is raised when an analyser needing them is built.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs {packages}, which is not installed (cannot import {module!r}). Install the "
            f"multilingual extra: `{MULTILINGUAL_INSTALL}` (or `pip install {packages}`)."
        ) from None


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the distributions an analyser relies on, for its description."""
    return {d: metadata.version(d) for d in distributions}
