import pytest

from harness import retrievers
from harness.errors import UnknownNameError
from harness.retrievers.bm25 import BM25Retriever


class NotARetriever:
    pass


def test_builtin_name_and_dotted_path_resolve():
    assert retrievers.resolve("bm25") is BM25Retriever
    assert retrievers.resolve("harness.retrievers.bm25:BM25Retriever") is BM25Retriever
    assert retrievers.resolve("harness.retrievers.bm25.BM25Retriever") is BM25Retriever
    assert retrievers.class_path(BM25Retriever) == "harness.retrievers.bm25:BM25Retriever"


def test_unknown_name_lists_registered_and_explains_plugins():
    with pytest.raises(UnknownNameError) as e:
        retrievers.resolve("colbert-magic")
    assert "Unknown retriever 'colbert-magic'. Registered retrievers: bm25" in str(e.value)
    assert "harness.retrievers" in str(e.value)


def test_bad_dotted_paths_are_explained():
    with pytest.raises(UnknownNameError, match=r"Cannot import retriever class 'nowhere.mod:X' \(ModuleNotFoundError"):
        retrievers.resolve("nowhere.mod:X")
    with pytest.raises(UnknownNameError, match="is not a subclass of harness.retrievers.Retriever"):
        retrievers.resolve("tests.retrievers.test_registry:NotARetriever")


def test_bad_params_name_the_retriever():
    with pytest.raises(UnknownNameError, match=r"Retriever 'bm25' \(harness.retrievers.bm25:BM25Retriever\) rejected its parameters"):
        retrievers.build("bm25", {"k3": 1.0})
    assert retrievers.build("bm25", {"k1": 1.2}).k1 == 1.2
