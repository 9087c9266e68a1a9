"""Optional parts of the harness and the pip extras that bring them: a command that needs one that
is missing says which extra to install, instead of an ImportError from deep inside."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from harness.errors import MissingDependencyError

# extra -> what it is for (pyproject.toml's [project.optional-dependencies] lists its packages)
EXTRAS = {
    "neural": "the neural retrievers (dense, late_interaction) and checkpoints: torch, transformers, "
              "sentence-transformers",
    "reports": "plots in `harness report`: matplotlib",
    "mteb": "MTEB export, import, the MTEB search wrapper and `source: {kind: mteb}`: mteb",
    "distributed": "`harness run --executor ray`: Ray",
    "approximate": "residual storage's k-means and `index: faiss`: faiss-cpu",
}


# top-level modules -> the extra that installs them
MODULE_EXTRAS = {"torch": "neural", "transformers": "neural", "sentence_transformers": "neural",
                 "safetensors": "neural", "matplotlib": "reports", "mteb": "mteb", "datasets": "mteb",
                 "ray": "distributed", "faiss": "approximate"}


def missing_extra(error: ImportError, needed_for: str) -> MissingDependencyError | None:
    """The paragraph for an ImportError of a module an extra brings; None for any other."""
    module = (error.name or "").split(".")[0]
    if not isinstance(error, ModuleNotFoundError) or module not in MODULE_EXTRAS:
        return None
    extra = MODULE_EXTRAS[module]
    return MissingDependencyError(
        f"{needed_for} needs {module}, which is not installed. Install the {extra} extra with "
        f"`pip install 'late-interaction-harness[{extra}]'` ({EXTRAS[extra]}), or "
        "`pip install 'late-interaction-harness[all]'` for every extra.")


def require(module: str, needed_for: str) -> ModuleType:
    """``module`` imported, or one paragraph naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        named = missing_extra(e, needed_for)
        if named is None:
            raise  # a module no extra brings, or one that is there but broken: its own error says why
        raise named from None


def require_installed(modules: tuple[str, ...], needed_for: str) -> None:
    """Each of ``modules`` installed (found, not imported: importing torch costs seconds, and a
    unit whose result exists never needs it), or the paragraph naming the first one's extra."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise missing_extra(ModuleNotFoundError(name=module), needed_for)
