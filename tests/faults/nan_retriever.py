"""A retriever whose arithmetic goes wrong: every third document it ranks scores NaN (named in a
suite by dotted path, so the fault runs through `harness run` in a fresh process)."""

from harness.retrievers import Retriever
from harness.runs import Run


class NaNScores(Retriever):
    def settings(self):
        return {"rule": "the first documents, every third one scored NaN"}

    def index(self, ids, texts):
        self.ids = list(ids)

    def search(self, ids, texts, k):
        return Run({q: {d: float("nan") if i % 3 == 2 else float(-i) for i, d in enumerate(self.ids[:k])}
                    for q in ids})
