"""Where the harness keeps its own caches. Third-party caches keep their own variables
(IR_DATASETS_HOME for ir_datasets, HF_HOME for Hugging Face)."""

import os
from pathlib import Path


def harness_home() -> Path:
    """Root of the harness's caches: $HARNESS_HOME, else ~/.cache/harness."""
    env = os.environ.get("HARNESS_HOME")
    return Path(env) if env else Path.home() / ".cache" / "harness"


def dataset_cache_dir() -> Path:
    return harness_home() / "datasets"


def ir_datasets_home() -> Path:
    """The folder ir_datasets reads and downloads into (its own default when unset)."""
    env = os.environ.get("IR_DATASETS_HOME")
    return Path(env) if env else Path.home() / ".ir_datasets"
