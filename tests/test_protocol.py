from harness.hashing import canonical_json
from harness.protocol import ProtocolCard


def card(**changes) -> ProtocolCard:
    fields = dict(
        suite="beir", dataset="scifact", source={"kind": "ir_datasets", "id": "beir/scifact/test"},
        revision={"ir_datasets": "0.6.3", "files_md5": ["5f7d"]}, language="en", split="test",
        text={"document_fields": ["title", "text"], "separator": " "}, max_length={"query": 32, "document": 300},
        mode="full", candidates=None, depth=1000, remove_self_matches=False, filters={"dropped": {}},
        metrics=["ndcg@10"], main_metric="ndcg@10", system={"tokenizer": {"stemmer": "pystemmer:porter"}},
    )
    fields.update(changes)
    return ProtocolCard(**fields)


def test_canonical_json_is_independent_of_key_order():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'


def test_hash_is_stable_and_ignores_display_labels():
    assert card().protocol_hash == card().protocol_hash
    assert len(card().protocol_hash) == 64
    assert card(suite="other", dataset="sf").protocol_hash == card().protocol_hash
    assert card(suite="other").card_hash == card().card_hash


def test_every_protocol_field_changes_the_protocol_hash():
    base = card().protocol_hash
    for change in [dict(max_length={"query": 32, "document": 512}), dict(revision={"ir_datasets": "0.6.4"}),
                   dict(remove_self_matches=True), dict(filters={"dropped": {"empty_documents": 3}}),
                   dict(text={"document_fields": ["text"], "separator": " "}), dict(depth=100),
                   dict(main_metric="recall@100", metrics=["recall@100"])]:
        assert card(**change).protocol_hash != base, change


def test_system_section_changes_card_hash_but_not_protocol_hash():
    other = card(system={"tokenizer": {"stemmer": None}})
    assert other.protocol_hash == card().protocol_hash
    assert other.card_hash != card().card_hash
    assert other.differences(card()) == ["system"]
