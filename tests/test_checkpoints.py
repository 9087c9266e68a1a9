"""The checkpoint builders of tests/checkpoints.py write the real formats (docs/checkpoint-formats.md)."""

from __future__ import annotations

import json
import string

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.checkpoints import (
    build_pylate,
    build_stanford_colbert,
    minilm_snapshot,
    projection_of,
    seeded_projection,
)

STANFORD_FILES = {"artifact.metadata", "config.json", "model.safetensors", "special_tokens_map.json",
                  "tokenizer.json", "tokenizer_config.json", "vocab.txt"}
PYLATE_FILES = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "config.json",
                "model.safetensors", "1_Dense/config.json", "1_Dense/model.safetensors", "added_tokens.json",
                "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"}
SAMPLE_KEYS = ("embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight",
               "encoder.layer.0.attention.self.query.weight", "encoder.layer.5.output.dense.bias",
               "pooler.dense.weight")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def minilm() -> dict[str, torch.Tensor]:
    return load_file(str(minilm_snapshot() / "model.safetensors"))


@pytest.fixture(scope="module")
def stanford(tmp_path_factory):
    return build_stanford_colbert(tmp_path_factory.mktemp("stanford") / "ckpt")


@pytest.fixture(scope="module")
def pylate(tmp_path_factory):
    return build_pylate(tmp_path_factory.mktemp("pylate") / "ckpt")


def files(path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_minilm_snapshot_is_the_pre_seeded_cache():
    snapshot = minilm_snapshot()
    assert snapshot.parent.name == "snapshots"
    assert "models--sentence-transformers--all-MiniLM-L6-v2" in snapshot.parts
    assert json.loads((snapshot / "config.json").read_text())["hidden_size"] == 384


# --- Stanford ColBERT ---------------------------------------------------------------------------


def test_stanford_folder_has_the_files_of_colbert_ai(stanford):
    assert files(stanford) == STANFORD_FILES
    config = json.loads((stanford / "config.json").read_text())
    assert config["architectures"] == ["HF_ColBERT"]
    assert config["model_type"] == "bert" and config["vocab_size"] == 30522


def test_stanford_weights_are_minilm_under_bert_prefix_plus_linear(stanford, minilm):
    state = weights(stanford)
    assert set(state) == {f"bert.{k}" for k in minilm if k != "embeddings.position_ids"} | {"linear.weight"}
    for key in SAMPLE_KEYS:
        assert torch.equal(state[f"bert.{key}"], minilm[key]), key
    assert state["linear.weight"].shape == (128, 384)  # (dim, hidden), nn.Linear(hidden, dim, bias=False)
    assert "linear.bias" not in state
    with safe_open(str(stanford / "model.safetensors"), framework="pt") as f:
        assert f.metadata() == {"format": "pt"}


def test_stanford_projection_is_the_seeded_matrix(stanford):
    assert torch.equal(projection_of(stanford), seeded_projection(128, 0))


def test_stanford_artifact_metadata_defaults(stanford):
    meta = json.loads((stanford / "artifact.metadata").read_text())
    assert meta["query_token_id"] == "[unused0]" and meta["doc_token_id"] == "[unused1]"
    assert (meta["query_maxlen"], meta["doc_maxlen"], meta["dim"]) == (32, 180, 128)
    assert meta["mask_punctuation"] is True and meta["attend_to_mask_tokens"] is False
    assert meta["similarity"] == "cosine" and meta["interaction"] == "colbert"
    assert meta["checkpoint"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["meta"]["version"] == "colbert-v0.4"


def test_stanford_settings_reach_artifact_metadata_and_weights(tmp_path):
    path = build_stanford_colbert(tmp_path / "ckpt", dim=96, seed=7, query_maxlen=48, doc_maxlen=300,
                                  mask_punctuation=False, attend_to_mask_tokens=True)
    meta = json.loads((path / "artifact.metadata").read_text())
    assert (meta["dim"], meta["query_maxlen"], meta["doc_maxlen"]) == (96, 48, 300)
    assert meta["mask_punctuation"] is False and meta["attend_to_mask_tokens"] is True
    assert projection_of(path).shape == (96, 384)
    assert torch.equal(projection_of(path), seeded_projection(96, 7))


def test_stanford_tokenizer_markers_are_unused0_and_unused1(stanford):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(stanford)
    assert tok.convert_tokens_to_ids(["[unused0]", "[unused1]"]) == [1, 2]
    assert (tok.cls_token_id, tok.sep_token_id, tok.mask_token_id, tok.pad_token_id) == (101, 102, 103, 0)
    assert len(tok) == 30522  # colbert-ai adds nothing to the vocabulary
    # The marker is an id, not text: written into a string it is split into word pieces. That is why
    # colbert-ai tokenizes ". " + text and overwrites position 1 with the marker id.
    assert tok("[unused0] hello")["input_ids"] != [101, 1, 7592, 102]
    ids = tok(". hello")["input_ids"]
    ids[1] = tok.convert_tokens_to_ids("[unused0]")
    assert ids == [101, 1, 7592, 102]


def test_transformers_loads_stanford_encoder_with_its_weights(stanford, minilm):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(stanford)  # BertModel; "bert." is its base_model_prefix
    assert type(model).__name__ == "BertModel"
    assert torch.equal(model.embeddings.word_embeddings.weight, minilm["embeddings.word_embeddings.weight"])
    assert torch.equal(model.encoder.layer[3].attention.self.key.weight,
                       minilm["encoder.layer.3.attention.self.key.weight"])


# --- PyLate -------------------------------------------------------------------------------------


def test_pylate_folder_has_the_files_of_pylate(pylate):
    assert PYLATE_FILES <= files(pylate)
    modules = json.loads((pylate / "modules.json").read_text())
    assert [(m["path"], m["type"]) for m in modules] == [
        ("", "sentence_transformers.models.Transformer"), ("1_Dense", "pylate.models.Dense.Dense")]
    dense = json.loads((pylate / "1_Dense" / "config.json").read_text())
    assert dense == {"in_features": 384, "out_features": 128, "bias": False,
                     "activation_function": "torch.nn.modules.linear.Identity", "use_residual": False}
    assert json.loads((pylate / "sentence_bert_config.json").read_text()) == {"max_seq_length": 256,
                                                                             "do_lower_case": False}


def test_pylate_config_defaults(pylate):
    config = json.loads((pylate / "config_sentence_transformers.json").read_text())
    assert config["query_prefix"] == "[Q] " and config["document_prefix"] == "[D] "
    assert (config["query_length"], config["document_length"]) == (32, 180)
    assert config["do_query_expansion"] is True and config["attend_to_expansion_tokens"] is False
    assert config["skiplist_words"] == list(string.punctuation)
    assert config["similarity_fn_name"] == "MaxSim"


def test_pylate_settings_reach_the_config(tmp_path):
    path = build_pylate(tmp_path / "a", dim=64, seed=3, query_length=48, document_length=300,
                        attend_to_expansion_tokens=True, skiplist_words=[".", ","])
    config = json.loads((path / "config_sentence_transformers.json").read_text())
    assert (config["query_length"], config["document_length"]) == (48, 300)
    assert config["attend_to_expansion_tokens"] is True and config["skiplist_words"] == [".", ","]
    assert torch.equal(projection_of(path), seeded_projection(64, 3))
    # PyLate turns attention to expansion tokens off when queries are not expanded, before saving.
    path = build_pylate(tmp_path / "b", do_query_expansion=False, attend_to_expansion_tokens=True)
    config = json.loads((path / "config_sentence_transformers.json").read_text())
    assert config["do_query_expansion"] is False and config["attend_to_expansion_tokens"] is False


def test_pylate_weights_are_minilm_without_prefix_and_grown_vocabulary(pylate, minilm):
    state = weights(pylate)
    assert set(state) == set(minilm) - {"embeddings.position_ids"}
    words = state["embeddings.word_embeddings.weight"]
    assert words.shape == (30524, 384)  # two rows added for "[Q] " and "[D] "
    assert torch.equal(words[:30522], minilm["embeddings.word_embeddings.weight"])
    for key in SAMPLE_KEYS[1:]:
        assert torch.equal(state[key], minilm[key]), key
    assert json.loads((pylate / "config.json").read_text())["vocab_size"] == 30524
    dense = load_file(str(pylate / "1_Dense" / "model.safetensors"))
    assert set(dense) == {"linear.weight"}


def test_pylate_projection_is_the_seeded_matrix(pylate, tmp_path):
    assert torch.equal(projection_of(pylate), seeded_projection(128, 0))
    other = build_pylate(tmp_path / "other", seed=1)
    assert not torch.equal(projection_of(other), projection_of(pylate))


def test_pylate_tokenizer_has_the_prefix_tokens(pylate):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pylate)
    assert len(tok) == 30524
    assert tok.convert_tokens_to_ids(["[Q] ", "[D] "]) == [30522, 30523]
    assert tok("[Q] hello")["input_ids"] == [101, 30522, 7592, 102]
    assert tok("[D] hello")["input_ids"] == [101, 30523, 7592, 102]
    # The token is "[Q] " with its space: without it, it is unknown.
    assert tok.convert_tokens_to_ids("[Q]") == tok.unk_token_id
    # PyLate pads queries with [MASK] and saves the tokenizer that way.
    assert tok.pad_token == "[MASK]" and tok.pad_token_id == tok.mask_token_id == 103


def test_transformers_loads_pylate_encoder_with_its_weights(pylate, minilm):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(pylate)
    assert model.embeddings.word_embeddings.weight.shape == (30524, 384)
    assert torch.equal(model.embeddings.word_embeddings.weight[:30522], minilm["embeddings.word_embeddings.weight"])
    assert torch.equal(model.encoder.layer[2].output.dense.weight, minilm["encoder.layer.2.output.dense.weight"])


def test_builders_refuse_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError):
        build_pylate(tmp_path)


def test_projection_of_rejects_other_folders(tmp_path):
    with pytest.raises(ValueError):
        projection_of(tmp_path)
