"""Optional parts of the harness and the pip extras that bring them: a command that needs one that
is missing says which extra to install, instead of an ImportError from deep inside."""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import MissingDependencyError

# extra -> what it is for (pyproject.toml's [project.optional-dependencies] lists its packages)
EXTRAS = {
    "neural": "the neural retrievers (dense, late_interaction) and checkpoints: torch, transformers, "
              "sentence-transformers",
    "reports": "plots in `harness report`: matplotlib",
    "mteb": "MTEB export, import, the MTEB search wrapper and `source: {kind: mteb}`: mteb",
    "distributed": "`harness run --executor ray`: Ray",
}


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """``module`` imported, or one paragraph naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but broken: its own error says why
        raise MissingDependencyError(
            f"{needed_for} needs {module.split('.')[0]}, which is not installed. Install the {extra} extra with "
            f"`pip install 'late-interaction-harness[{extra}]'` ({EXTRAS[extra]}), or "
            "`pip install 'late-interaction-harness[all]'` for every extra.") from None
