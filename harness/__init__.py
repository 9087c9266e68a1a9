"""Evaluation and benchmarking harness for late-interaction (ColBERT-style) retrievers.

Data flows one way: suite -> dataset -> retriever -> run -> metrics -> result -> report.
The public verbs are kept small and import their heavy dependencies lazily, so that
``import harness`` and ``harness list`` stay fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_suite", "evaluate"]


def __getattr__(name):
    # Lazy re-exports: the metrics module pulls in ranx/numba, which costs seconds.
    if name == "load_suite":
        from harness.suite import load_suite

        return load_suite
    if name == "evaluate":
        from harness.metrics import evaluate

        return evaluate
    raise AttributeError(name)
