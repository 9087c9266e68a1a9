import pytest

from harness.errors import ParameterError, UnknownNameError
from harness.retrievers.base import Retriever
from harness.retrievers.bm25 import BM25Retriever
from harness.retrievers.params import check_params


def where(param):
    return f"at {param or 'entry'}"


class Plugin(Retriever):
    """A plug-in with an unannotated parameter and a **kwargs: those are its own to check."""

    def __init__(self, size: int, loose=None, **options):
        pass


def test_yaml_numbers_fit_float_and_none_fits_optional():
    check_params(BM25Retriever, {"k1": 1, "b": 0.4, "stemmer": None, "stopwords": ["a", "b"]}, where)


@pytest.mark.parametrize("params,error,message", [
    ({"k1": "fast"}, ParameterError, "at k1: `k1` is 'fast', but BM25Retriever takes a float"),
    ({"lowercase": 1}, ParameterError, "at lowercase: `lowercase` is 1, but BM25Retriever takes a bool"),
    ({"stopwords": [1]}, ParameterError, "at stopwords: `stopwords` is [1], but BM25Retriever takes `str | list[str] | None`"),
    ({"k3": 1.0}, UnknownNameError, "at k3: BM25Retriever takes no parameter 'k3'; its parameters are k1, b, method,"),
])
def test_wrong_names_and_types_are_refused_with_the_place(params, error, message):
    with pytest.raises(error) as raised:
        check_params(BM25Retriever, params, where)
    assert str(raised.value).startswith(message)


def test_a_plugins_own_parameters_are_left_to_it_but_required_ones_are_not():
    check_params(Plugin, {"size": 3, "loose": object(), "anything": "goes"}, where)
    with pytest.raises(ParameterError, match=r"^at entry: Plugin needs `size` in its params\.$"):
        check_params(Plugin, {"loose": 1}, where)
    with pytest.raises(ParameterError, match="`size` is 3.0, but Plugin takes an int"):
        check_params(Plugin, {"size": 3.0}, where)
