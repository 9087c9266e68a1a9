"""Small builders shared by the tests of results and reports."""

from harness.protocol import ProtocolCard
from harness.results import ResultRecord, now, result_key


def make_card(dataset: str = "scifact", **changes) -> ProtocolCard:
    fields = dict(
        suite="beir", dataset=dataset, source={"kind": "ir_datasets", "id": f"beir/{dataset}/test"},
        revision={"files_md5": ["5f7d1de60b170fc8027bb7898e2efca1"]}, language="en", split="test",
        text={"document_fields": ["title", "text"], "separator": " "}, max_length={"query": 32, "document": 300},
        mode="full", candidates=None, depth=1000, remove_self_matches=False, filters={"dropped": {}},
        metrics=["ndcg@10", "recall@100"], main_metric="ndcg@10", system={},
    )
    fields.update(changes)
    return ProtocolCard(**fields)


def make_record(name: str, dataset: str, ndcg: float, card: ProtocolCard | None = None, params=None) -> ResultRecord:
    card = card or make_card(dataset)
    identity = {"name": name, "class": f"pkg:{name}", "params": params or {}}
    return ResultRecord(
        key=result_key(card, identity), suite=card.suite, dataset=dataset, retriever=identity,
        protocol=card.to_dict(), protocol_hash=card.protocol_hash, card_hash=card.card_hash,
        main_metric="ndcg@10", metrics={"ndcg@10": ndcg, "recall@100": min(1.0, ndcg + 0.2)}, n_queries=3,
        timings={}, environment={}, created=now(),
    )


def ndcg(grades: list[int], judged: list[int], k: int = 10) -> float:
    """nDCG@k with linear gains (trec_eval's), of the grades in ranking order against all judged grades."""
    import math

    def dcg(gs):
        return sum(g / math.log2(i + 2) for i, g in enumerate(gs))

    return dcg(grades[:k]) / dcg(sorted(judged, reverse=True)[:k])


def scifact_suite(name: str, description: str, retrievers: str, document_length: int = 64,
                  metrics: str = "[ndcg@10]") -> str:
    """A suite file's text: BEIR SciFact's test split (from the pre-seeded ir_datasets cache) with
    the given ``retrievers:`` section (YAML, indented two spaces), depth 100, nDCG@10 main metric."""
    return f"""name: {name}
description: {description}
defaults:
  language: en
  split: test
  text: {{document_fields: [title, text], separator: " "}}
  max_length: {{query: 32, document: {document_length}}}
  depth: 100
  metrics: {metrics}
  main_metric: ndcg@10
datasets:
  scifact:
    source: {{kind: ir_datasets, id: beir/scifact/test}}
retrievers:
{retrievers}"""
