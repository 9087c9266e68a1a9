from harness.hashing import canonical_json
from harness.protocol import ProtocolCard

LABELS = {"suite", "dataset", "group", "in_average"}


def card(**changes) -> ProtocolCard:
    fields = dict(
        suite="beir", dataset="scifact", source={"kind": "ir_datasets", "id": "beir/scifact/test"},
        revision={"files_md5": ["5f7d"]}, language="en", split="test",
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


def changed(name: str, value):
    """Another valid value of the card's field ``name``, whatever its type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return value + ["other"]
    if isinstance(value, dict):
        return {**value, "other": 1}
    for other in ({"other": 1}, "other"):  # None: the first value the field's type accepts
        try:
            card(**{name: other})
            return other
        except ValueError:
            continue
    raise AssertionError(f"no other value for {name}")


def test_every_field_but_the_labels_is_in_the_card_hash_and_all_but_system_in_the_protocol_hash():
    # Over the model's own fields: a field added to the card is hashed unless named a label.
    base = card()
    assert set(base.to_dict()) == set(ProtocolCard.model_fields) and LABELS < set(ProtocolCard.model_fields)
    for name in ProtocolCard.model_fields:
        other = card(**{name: changed(name, getattr(base, name))})
        assert other.to_dict()[name] != base.to_dict()[name], name
        if name in LABELS:
            assert (other.card_hash, other.protocol_hash) == (base.card_hash, base.protocol_hash), name
            continue
        assert other.card_hash != base.card_hash, name
        assert (other.protocol_hash != base.protocol_hash) == (name != "system"), name


def test_system_section_changes_card_hash_but_not_protocol_hash():
    other = card(system={"tokenizer": {"stemmer": None}})
    assert other.protocol_hash == card().protocol_hash
    assert other.card_hash != card().card_hash
    assert other.differences(card()) == ["system"]
