"""Data layer: sources -> normalised, checked, cached ``Dataset`` objects."""

from harness.data.model import Corpus, DataReport, Dataset, Qrels, Queries

__all__ = ["Corpus", "Dataset", "DataReport", "Qrels", "Queries", "load_dataset"]


def __getattr__(name):
    if name == "load_dataset":  # lazy: it imports the suite schema and pyarrow
        from harness.data.load import load_dataset

        return load_dataset
    raise AttributeError(name)
