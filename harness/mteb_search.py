"""Any harness retriever as an MTEB search model (MTEB's ``SearchProtocol``: ``index`` a corpus,
``search`` queries, re-ranking ``top_ranked`` candidates when a task gives them), so that
``mteb.evaluate`` runs it on any MTEB retrieval or re-ranking task and scores it with MTEB's own
evaluator: a cross-check of the harness's loading and metrics, and a way to submit to MTEB."""

from __future__ import annotations

from typing import Any

from harness.extras import require
from harness.retrievers.base import Retriever


class HarnessSearchModel:
    """``retriever`` searched by MTEB. Documents are ``title`` and ``text`` joined by ``separator``
    (empty fields skipped), as a suite's ``text`` builds them."""

    def __init__(self, retriever: Retriever, name: str, revision: str | None = None, separator: str = " "):
        require("mteb", "The MTEB search wrapper")
        self.retriever, self.separator = retriever, separator
        self._name, self._revision = name, revision

    @property
    def mteb_model_meta(self):
        from mteb.models.model_meta import ModelMeta

        return ModelMeta.create_empty({"name": self._name, "revision": self._revision or "no_revision_available"})

    def index(self, corpus, *, task_metadata=None, hf_split=None, hf_subset=None, encode_kwargs=None,
              num_proc=None, **kwargs: Any) -> None:
        titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
        texts = [self.separator.join(p for p in (t or "", x or "") if p) for t, x in zip(titles, corpus["text"])]
        self.retriever.index([str(i) for i in corpus["id"]], texts)

    def search(self, queries, *, task_metadata=None, hf_split=None, hf_subset=None, top_k: int = 1000,
               encode_kwargs=None, top_ranked=None, num_proc=None, **kwargs: Any) -> dict[str, dict[str, float]]:
        ids, texts = [str(i) for i in queries["id"]], list(queries["text"])
        if top_ranked is not None:
            run = self.retriever.rerank(ids, texts, {q: list(top_ranked.get(q, [])) for q in ids})
        else:
            run = self.retriever.search(ids, texts, top_k)
        return {q: {d: float(s) for d, s in ranking[:top_k]} for q, ranking in run.items()}


def task_with_data(task, dataset, split: str, subset: str = "default"):
    """MTEB task ``task`` holding the harness's loaded ``dataset`` (a ``harness.data.Dataset``) for
    ``split`` and ``subset`` instead of what MTEB would download: MTEB's evaluator then scores the
    same queries, documents and judgments as the harness."""
    from datasets import Dataset as Rows

    corpus = Rows.from_dict({"id": dataset.corpus.ids, "title": dataset.corpus.titles, "text": dataset.corpus.texts})
    queries = Rows.from_dict({"id": dataset.queries.ids, "text": dataset.queries.texts})
    top_ranked = ({q: list(dataset.candidates.get(q, [])) for q in dataset.queries.ids}
                  if dataset.candidates else None)
    task.dataset = {subset: {split: {"corpus": corpus, "queries": queries, "relevant_docs": dataset.qrels.to_dict(),
                                     "top_ranked": top_ranked}}}
    task.data_loaded = True
    return task
