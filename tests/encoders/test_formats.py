"""Stanford ColBERT and PyLate checkpoints, built in their real on-disk formats from the MiniLM
weights (tests/checkpoints.py), loaded through the public loader, and checked against an
independent re-computation: plain transformers forward + projection + normalisation."""

import json
import shutil
import string

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from harness.encoders.checkpoint import load_checkpoint
from harness.encoders.multivector import MultiVectorEncoder
from harness.errors import UnknownNameError
from harness.index.token_store import TokenStoreWriter

from tests.checkpoints import build_pylate, build_stanford_colbert, minilm_snapshot, projection_of

DOCS = ["Vitamin D (calciferol) deficiency: bone density; fractures!", "Hello, world.", "word " * 300]
QUERIES = ["Does vitamin D prevent fractures?", "bones"]


@pytest.fixture(scope="module")
def stanford(tmp_path_factory):
    return build_stanford_colbert(tmp_path_factory.mktemp("ckpt") / "stanford", dim=96, seed=3, doc_maxlen=180)


@pytest.fixture(scope="module")
def pylate(tmp_path_factory):
    return build_pylate(tmp_path_factory.mktemp("ckpt") / "pylate", dim=64, seed=5, document_length=120)


def independent(path, ids: list[int], attention: list[int]) -> np.ndarray:
    """The reference: transformers forward, then the saved projection, then L2 normalisation."""
    model = AutoModel.from_pretrained(path).eval()
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention])).last_hidden_state[0]
    return torch.nn.functional.normalize(hidden @ projection_of(path).T, dim=-1).numpy()


def test_stanford_settings_come_from_artifact_metadata(stanford):
    ckpt = load_checkpoint(str(stanford))
    s = ckpt.settings
    assert ckpt.identity["format"] == "stanford" and len(ckpt.identity["weights_sha256"]) == 64
    assert (s.query_marker, s.document_marker) == ("[unused0]", "[unused1]")
    assert (s.query_maxlen, s.doc_maxlen, s.dim) == (32, 180, 96)
    assert s.query_expansion and not s.attend_to_expansion
    assert s.skiplist == tuple(string.punctuation)
    assert torch.equal(ckpt.projection, projection_of(stanford))


def test_stanford_query_ids_markers_and_mask_augmentation(stanford):
    enc = MultiVectorEncoder(load_checkpoint(str(stanford)))
    tok = enc.tokenizer
    ids, attend, scoring = enc.query_inputs(["bones"])
    assert tok.convert_ids_to_tokens(ids[0][:4]) == ["[CLS]", "[unused0]", "bones", "[SEP]"]
    assert ids[0][1] == 1  # [unused0]
    assert ids[0][4:] == [tok.mask_token_id] * 28 and len(ids[0]) == 32
    assert attend[0] == [1] * 4 + [0] * 28 and all(scoring[0])


def test_stanford_vectors_match_the_independent_computation(stanford, tmp_path):
    enc = MultiVectorEncoder(load_checkpoint(str(stanford)), batch_tokens=256)
    store = enc.encode_documents(DOCS, lambda c, d: TokenStoreWriter(tmp_path / "s", c, d, dtype="float32"))
    tok = AutoTokenizer.from_pretrained(stanford)
    for i, text in enumerate(DOCS):
        ids = tok(text, truncation=True, max_length=179)["input_ids"]
        ids = ids[:1] + [tok.convert_tokens_to_ids("[unused1]")] + ids[1:]
        keep = [tok.convert_ids_to_tokens(t) not in string.punctuation for t in ids]
        expected = independent(stanford, ids, [1] * len(ids))[keep]
        np.testing.assert_allclose(store.doc(i), expected, atol=1e-5)
    assert store.dim == 96
    # "Hello, world." -> [CLS] [unused1] hello , world . [SEP]: comma and full stop dropped
    assert store.doc(1).shape == (5, 96)
    assert store.doc(2).shape == (180, 96)
    q, mask = enc.encode_queries(QUERIES)
    qids, attend, _ = enc.query_inputs(QUERIES)
    np.testing.assert_allclose(q[0], independent(stanford, qids[0], attend[0]), atol=1e-5)
    assert q.shape == (2, 32, 96) and mask.all()


def test_attend_to_mask_tokens_changes_the_query_vectors(tmp_path):
    path = build_stanford_colbert(tmp_path / "attend", dim=32, attend_to_mask_tokens=True)
    enc = MultiVectorEncoder(load_checkpoint(str(path)))
    _, attend, _ = enc.query_inputs(["bones"])
    assert attend[0] == [1] * 32
    plain = MultiVectorEncoder(load_checkpoint(str(path), overrides={"attend_to_expansion": False}))
    assert not np.allclose(enc.encode_queries(["bones"])[0], plain.encode_queries(["bones"])[0], atol=1e-3)


def test_pylate_settings_prefix_tokens_and_vectors(pylate, tmp_path):
    ckpt = load_checkpoint(str(pylate))
    s = ckpt.settings
    assert ckpt.identity["format"] == "pylate"
    assert (s.query_marker, s.document_marker) == ("[Q] ", "[D] ")
    assert (s.query_maxlen, s.doc_maxlen, s.dim) == (32, 120, 64)
    enc = MultiVectorEncoder(ckpt, batch_tokens=256)
    assert (enc.query_marker_id, enc.document_marker_id) == (30522, 30523)
    ids, attend, _ = enc.query_inputs(["bones"])
    assert ids[0][:4] == [101, 30522, enc.tokenizer.convert_tokens_to_ids("bones"), 102]
    assert ids[0][4:] == [103] * 28 and attend[0][4:] == [0] * 28
    store = enc.encode_documents(DOCS[:2], lambda c, d: TokenStoreWriter(tmp_path / "p", c, d, dtype="float32"))
    tok = AutoTokenizer.from_pretrained(pylate)
    ids = tok(DOCS[1], truncation=True, max_length=119)["input_ids"]
    ids = ids[:1] + [30523] + ids[1:]
    keep = [tok.convert_ids_to_tokens(t) not in string.punctuation for t in ids]
    np.testing.assert_allclose(store.doc(1), independent(pylate, ids, [1] * len(ids))[keep], atol=1e-5)


def test_pylate_without_expansion_and_with_custom_skiplist(tmp_path):
    path = build_pylate(tmp_path / "noexp", dim=32, do_query_expansion=False, skiplist_words=["world"])
    enc = MultiVectorEncoder(load_checkpoint(str(path)))
    ids, _, scoring = enc.query_inputs(["bones"])
    assert len(ids[0]) == 4 and scoring[0] == [True] * 4
    _, keep = enc.document_inputs(["Hello, world."])
    # [CLS] [D] hello , world . [SEP]: only "world" is skipped now, punctuation kept
    assert keep[0].tolist() == [True, True, True, True, False, True, True]


def test_suite_lengths_replace_the_checkpoints_unless_params_set_them(stanford):
    from harness.retrievers.late_interaction import LateInteractionRetriever

    r = LateInteractionRetriever(str(stanford))
    r.set_max_length(64, 300)
    assert (r.settings_used.query_maxlen, r.settings_used.doc_maxlen) == (64, 300)
    r = LateInteractionRetriever(str(stanford), doc_maxlen=220)
    r.set_max_length(64, 300)
    assert (r.settings_used.query_maxlen, r.settings_used.doc_maxlen) == (64, 220)
    assert r.settings()["encoder"]["doc_maxlen"] == 220


def test_custom_model_code_needs_trust_remote_code(tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(minilm_snapshot(), folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnknownNameError, match="ships its own model code .* set `trust_remote_code: true`"):
        load_checkpoint(str(folder))
