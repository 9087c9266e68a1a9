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

from tests.checkpoints import (JINA_DOC_MARKER, JINA_QUERY_MARKER, build_jina_style_colbert, build_pylate,
                               build_stanford_colbert, minilm_snapshot, projection_of)

DOCS = ["Vitamin D (calciferol) deficiency: bone density; fractures!", "Hello, world.", "word " * 300]
QUERIES = ["Does vitamin D prevent fractures?", "bones"]


@pytest.fixture(scope="module")
def stanford(tmp_path_factory):
    return build_stanford_colbert(tmp_path_factory.mktemp("ckpt") / "stanford", dim=96, seed=3, doc_maxlen=180)


@pytest.fixture(scope="module")
def pylate(tmp_path_factory):
    return build_pylate(tmp_path_factory.mktemp("ckpt") / "pylate", dim=64, seed=5, document_length=120)


def independent(path, ids: list[int], attention: list[int], model_class=AutoModel) -> np.ndarray:
    """The reference: transformers forward, then the saved projection, then L2 normalisation."""
    model = model_class.from_pretrained(path).eval()
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention])).last_hidden_state[0]
    return torch.nn.functional.normalize(hidden @ projection_of(path).T, dim=-1).numpy()


def test_stanford_settings_come_from_artifact_metadata(stanford):
    ckpt = load_checkpoint(str(stanford))
    s = ckpt.settings
    assert ckpt.identity["format"] == "stanford" and len(ckpt.identity["files_sha256"]) == 64
    assert (s.query_marker, s.document_marker) == ("[unused0]", "[unused1]")
    assert (s.query_maxlen, s.doc_maxlen, s.dim) == (32, 180, 96)
    assert s.query_expansion and not s.attend_to_expansion
    assert s.skiplist == tuple(string.punctuation)
    assert torch.equal(ckpt.projection.layers[0].weight, projection_of(stanford))
    assert ckpt.identity["projection"] == [{"in": 384, "out": 96, "bias": False, "activation": "Identity",
                                            "residual": False}]


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


def test_stanford_settings_the_harness_cannot_reproduce_are_refused_by_name(tmp_path):
    path = build_stanford_colbert(tmp_path / "s", dim=32)
    meta = json.loads((path / "artifact.metadata").read_text())
    for change, message in [({"interaction": "flipr"}, "`interaction` 'flipr' is not supported"),
                            ({"similarity": "dot"}, "`similarity` 'dot' is neither cosine nor l2"),
                            ({"dim": 128}, "`dim` is 128, but the weights' `linear.weight` has 32 rows")]:
        (path / "artifact.metadata").write_text(json.dumps(dict(meta, **change)))
        with pytest.raises(UnknownNameError, match="artifact.metadata: " + message):
            load_checkpoint(str(path))
    # l2 is colbert-ai's training score only; its search, like the harness, uses the dot product.
    (path / "artifact.metadata").write_text(json.dumps(dict(meta, similarity="l2")))
    assert load_checkpoint(str(path)).settings.dim == 32


def test_stanford_settings_missing_from_the_metadata_take_colbert_ai_defaults(tmp_path):
    path = build_stanford_colbert(tmp_path / "s", dim=32, doc_maxlen=300, attend_to_mask_tokens=True)
    meta = json.loads((path / "artifact.metadata").read_text())
    # colbert/infra/config/settings.py: query_maxlen 32, doc_maxlen 220, attend_to_mask_tokens False.
    minimal = {k: v for k, v in meta.items() if k not in ("doc_maxlen", "query_maxlen", "attend_to_mask_tokens")}
    (path / "artifact.metadata").write_text(json.dumps(minimal))
    s = load_checkpoint(str(path)).settings
    assert (s.query_maxlen, s.doc_maxlen, s.attend_to_expansion) == (32, 220, False)


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


def test_a_checkpoint_with_its_own_model_code_runs_it_when_trusted(tmp_path):
    from transformers import BertModel

    path = build_jina_style_colbert(tmp_path / "jina", dim=128, seed=11)
    with pytest.raises(UnknownNameError, match="ships its own model code"):
        load_checkpoint(str(path))
    ckpt = load_checkpoint(str(path), trust_remote_code=True)
    s = ckpt.settings
    assert ckpt.identity["format"] == "stanford" and ckpt.identity["trust_remote_code"] is True
    assert (s.query_marker, s.document_marker, s.dim) == (JINA_QUERY_MARKER, JINA_DOC_MARKER, 128)
    assert s.query_expansion and s.attend_to_expansion

    enc = MultiVectorEncoder(ckpt, batch_tokens=256)
    # The folder's own class ran, loaded by transformers from the checkpoint's Python files.
    assert type(enc.model).__name__ == "JinaStyleModel"
    assert type(enc.model).__module__.startswith("transformers_modules.")
    assert (enc.query_marker_id, enc.document_marker_id) == (30522, 30523)
    ids, attend, _ = enc.query_inputs(["bones"])
    assert ids[0][:2] == [101, 30522] and ids[0][4:] == [103] * 28 and attend[0] == [1] * 32
    q, _ = enc.encode_queries(["bones"])
    np.testing.assert_allclose(q[0], independent(path, ids[0], attend[0], BertModel), atol=1e-5)

    store = enc.encode_documents(DOCS[:2], lambda c, d: TokenStoreWriter(tmp_path / "j", c, d, dtype="float32"))
    tok = AutoTokenizer.from_pretrained(path)
    doc = tok(DOCS[1])["input_ids"]
    doc = doc[:1] + [30523] + doc[1:]
    keep = [tok.convert_ids_to_tokens(t) not in string.punctuation for t in doc]
    expected = independent(path, doc, [1] * len(doc), BertModel)[keep]
    np.testing.assert_allclose(store.doc(1), expected, atol=1e-5)
    # Jina-ColBERT v2's 96 and 64 dimensions are truncations of its 128: slice, re-normalise.
    from harness.kernels.maxsim import maxsim_search

    for dim in (96, 64):
        cut = expected[:, :dim] / np.linalg.norm(expected[:, :dim], axis=1, keepdims=True)
        scores, order = maxsim_search(q[:1], np.ones((1, 32), bool), store.vectors, store.offsets, 2, dim=dim)
        qc = q[0, :, :dim] / np.linalg.norm(q[0, :, :dim], axis=1, keepdims=True)
        assert scores[0][list(order[0]).index(1)] == pytest.approx((qc @ cut.T).max(axis=1).sum(), abs=1e-4)


TWO_DENSE = [
    {"out_features": 384, "bias": True, "activation_function": "torch.nn.modules.activation.GELU", "use_residual": True},
    {"out_features": 48, "bias": False, "activation_function": "torch.nn.modules.activation.Tanh", "use_residual": True},
]


def dense_reference(path, hidden: torch.Tensor) -> torch.Tensor:
    """PyLate's Dense modules applied by hand from the folder's files, then L2 normalisation."""
    from safetensors.torch import load_file

    for module in json.loads((path / "modules.json").read_text())[1:]:
        config = json.loads((path / module["path"] / "config.json").read_text())
        tensors = load_file(str(path / module["path"] / "model.safetensors"))
        out = hidden @ tensors["linear.weight"].T + tensors.get("linear.bias", 0)
        name = config["activation_function"].rsplit(".", 1)[-1]
        out = {"GELU": torch.nn.functional.gelu, "Tanh": torch.tanh, "Identity": lambda x: x}[name](out)
        if config["use_residual"]:
            out = out + (hidden @ tensors["residual.weight"].T if "residual.weight" in tensors else hidden)
        hidden = out
    return torch.nn.functional.normalize(hidden, dim=-1)


def test_pylate_dense_modules_with_bias_activation_and_residual(tmp_path):
    from transformers import BertModel

    path = build_pylate(tmp_path / "two", dense=TWO_DENSE, seed=4)
    ckpt = load_checkpoint(str(path))
    assert ckpt.settings.dim == 48
    assert ckpt.identity["projection"] == [
        {"in": 384, "out": 384, "bias": True, "activation": "GELU", "residual": True},
        {"in": 384, "out": 48, "bias": False, "activation": "Tanh", "residual": True}]
    enc = MultiVectorEncoder(ckpt, batch_tokens=256)
    store = enc.encode_documents(DOCS[:2], lambda c, d: TokenStoreWriter(tmp_path / "s", c, d, dtype="float32"))
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok(DOCS[0], truncation=True, max_length=179)["input_ids"]
    ids = ids[:1] + [30523] + ids[1:]
    keep = [tok.convert_ids_to_tokens(t) not in string.punctuation for t in ids]
    with torch.inference_mode():
        hidden = BertModel.from_pretrained(path).eval()(input_ids=torch.tensor([ids])).last_hidden_state[0]
        expected = dense_reference(path, hidden)[keep].numpy()
    np.testing.assert_allclose(store.doc(0), expected, atol=1e-5)
    # Averaging two such checkpoints averages every tensor of every layer.
    other = build_pylate(tmp_path / "other", dense=TWO_DENSE, seed=9)
    merged = load_checkpoint([str(path), str(other)], merge_weights=[3, 1]).projection
    a, b = ckpt.projection, load_checkpoint(str(other)).projection
    for i, name in [(0, "bias"), (1, "residual_weight")]:
        expected = 0.75 * getattr(a.layers[i], name) + 0.25 * getattr(b.layers[i], name)
        np.testing.assert_allclose(getattr(merged.layers[i], name).numpy(), expected.numpy(), atol=1e-7)


def test_pylate_modules_the_loader_cannot_reproduce_are_refused_by_name(tmp_path):
    custom = build_pylate(tmp_path / "custom", dense=[{"out_features": 32, "activation_function": "mylib.Swish"}])
    with pytest.raises(UnknownNameError, match=r"1_Dense/config.json: `activation_function` 'mylib.Swish' is not "
                                               r"torch's own: it is imported only when asked"):
        load_checkpoint(str(custom))
    no_bias = build_pylate(tmp_path / "nobias", dim=32)
    config = json.loads((no_bias / "1_Dense" / "config.json").read_text())
    (no_bias / "1_Dense" / "config.json").write_text(json.dumps(dict(config, bias=True)))
    with pytest.raises(UnknownNameError, match=r"1_Dense/config.json: `bias` is true but the weights hold no"):
        load_checkpoint(str(no_bias))
    pooled = build_pylate(tmp_path / "pooled", dim=32)
    modules = json.loads((pooled / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (pooled / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnknownNameError, match=r"modules.json: module '2' is 'sentence_transformers.models.Normalize'"):
        load_checkpoint(str(pooled))


def sentencepiece_style_tokenizer():
    """A tokenizer that marks word starts with "▁" as SentencePiece vocabularies (XLM-RoBERTa's,
    Jina-ColBERT v2's) do: "." alone encodes as ["▁", "."], after a word as ["."]."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁", ".", "!", "▁hello", "▁world"]
    tok = Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=1, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def test_skiplist_ids_follow_each_formats_own_code():
    from harness.encoders.multivector import skiplist_ids

    tok = sentencepiece_style_tokenizer()
    ids = tok.convert_tokens_to_ids
    pieces = tok.convert_ids_to_tokens(tok.encode("hello world.", add_special_tokens=False))
    assert pieces == ["▁hello", "▁world", "."]
    assert tok.encode(".", add_special_tokens=False) == [ids("▁"), ids(".")]
    # colbert-ai takes the first piece of a mark encoded alone: here the word-start piece.
    assert skiplist_ids(tok, [".", "!"], "stanford") == {ids("▁")}
    # PyLate looks the mark up as a vocabulary entry; a word that is not one gives [UNK]'s id, as there.
    assert skiplist_ids(tok, [".", "!", "?"], "pylate") == {ids("."), ids("!"), ids("[UNK]")}
    # Plain checkpoints drop only what is exactly one piece: nothing here.
    assert skiplist_ids(tok, [".", "!"], "plain") == frozenset()

    # On a WordPiece vocabulary every ASCII punctuation mark is one token, and the three rules agree.
    minilm = AutoTokenizer.from_pretrained(minilm_snapshot())
    rules = {f: skiplist_ids(minilm, string.punctuation, f) for f in ("stanford", "pylate", "plain")}
    assert rules["stanford"] == rules["pylate"] == rules["plain"]
    assert len(rules["plain"]) == 32 and minilm.unk_token_id not in rules["plain"]


def test_a_stanford_checkpoint_loads_without_transformers_load_report(stanford, capfd, caplog):
    # The projection (`linear.weight`) is not the encoder's: transformers would report it as an
    # unexpected key on every load; the harness reads it itself, so nothing is reported.
    _, model = load_checkpoint(str(stanford)).load_model()
    out, err = capfd.readouterr()
    assert "LOAD REPORT" not in out + err + caplog.text
    assert "were not sharded" not in out + err + caplog.text  # what a level on the loading module's logger turns on
    assert "Loading weights" not in out + err  # transformers' own bar: the harness shows its own steps
    from transformers.utils import logging

    assert logging.is_progress_bar_enabled()  # as it was before the load
    assert model.config.hidden_size == 384


def test_a_checkpoint_missing_encoder_weights_is_refused_naming_them(stanford, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(stanford, broken)
    state = load_file(broken / "model.safetensors")
    dropped = sorted(k for k in state if k.startswith("bert.encoder.layer.0.attention.self."))
    for key in dropped:
        del state[key]
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UnknownNameError) as err:
        load_checkpoint(str(broken)).load_model()
    message = str(err.value)
    assert message.startswith(f"{broken}: the weights file lacks {len(dropped)} of the encoder's weights (")
    assert "encoder.layer.0.attention.self.key.bias" in message
    assert "re-download or re-export it" in message


def test_weights_the_encoder_does_not_use_are_named_in_a_warning(stanford, tmp_path):
    import torch as _torch
    from safetensors.torch import load_file, save_file

    extra = tmp_path / "extra"
    shutil.copytree(stanford, extra)
    state = load_file(extra / "model.safetensors")
    state["head.weight"] = _torch.zeros(2, 2)
    save_file(state, extra / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match=r"1 weights in the file are not used by the encoder \(head.weight\)"):
        load_checkpoint(str(extra)).load_model()
