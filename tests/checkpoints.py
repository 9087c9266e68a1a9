"""Builders of ColBERT checkpoints in the real on-disk formats, for tests that cannot download one.

Each builder takes the encoder of ``sentence-transformers/all-MiniLM-L6-v2`` (BERT, hidden size 384;
its Hugging Face cache is pre-seeded in ``../shared/cache/huggingface``), renames its weights to the
key layout of the format, adds a seeded random projection of shape ``(dim, 384)`` and writes the
tokenizer and configuration files the way the real tools write them. The layouts, and the sources
they follow, are described in ``docs/checkpoint-formats.md``:

- ``build_stanford_colbert``: what ``colbert-ai``'s ``BaseColBERT.save`` writes (the layout of
  colbert-ir/colbertv2.0, answerdotai/answerai-colbert-small-v1, JaColBERTv2.5): one
  ``model.safetensors`` holding ``bert.*`` and ``linear.weight``, ``config.json`` with
  ``architectures: ["HF_ColBERT"]``, the unchanged BERT tokenizer (markers are ``[unused0]`` and
  ``[unused1]``), and ``artifact.metadata``.
- ``build_jina_style_colbert``: the same layout as Jina-ColBERT v2 uses it: its own marker tokens
  added to the vocabulary, queries attending to their expansion, and model code in the folder
  (``auto_map``), which loads only with ``trust_remote_code``.
- ``build_pylate``: what ``pylate.models.ColBERT(...).save`` writes (PyLate 1.6.0 with
  sentence-transformers 5.3.0 and transformers 4.57.6): the Transformer module at the root (keys
  without prefix; the vocabulary grown by the two prefix tokens ``"[Q] "``/``"[D] "``), the
  projection in ``1_Dense/``, settings in ``config_sentence_transformers.json``.

Nothing here imports PyLate or colbert-ai; the folders only need torch and safetensors to write.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import string
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
HIDDEN = 384

# The toolchain whose output the builders reproduce (recorded in the files, as the tools do).
SENTENCE_TRANSFORMERS_VERSION = "5.3.0"
TRANSFORMERS_VERSION = "4.57.6"

# Stanford ColBERT's defaults (colbert/infra/config/settings.py: TokenizerSettings).
STANFORD_QUERY_MARKER = "[unused0]"
STANFORD_DOC_MARKER = "[unused1]"
# PyLate's defaults (pylate/models/colbert.py: ColBERT.__init__), trailing space included.
PYLATE_QUERY_PREFIX = "[Q] "
PYLATE_DOC_PREFIX = "[D] "

_TOKENIZER_SPECIALS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}


def shared_root() -> Path:
    """``../shared`` beside the checkout (``HARNESS_SHARED`` overrides it, as in conftest.py)."""
    return Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared"))


def minilm_snapshot() -> Path:
    """The snapshot folder of all-MiniLM-L6-v2 in the pre-seeded Hugging Face cache."""
    model = shared_root() / "cache" / "huggingface" / "hub" / ("models--" + MINILM_ID.replace("/", "--"))
    ref = model / "refs" / "main"
    if ref.is_file():
        snapshot = model / "snapshots" / ref.read_text().strip()
    else:
        found = sorted((model / "snapshots").glob("*")) if (model / "snapshots").is_dir() else []
        snapshot = found[0] if found else model / "snapshots" / "<missing>"
    if not (snapshot / "model.safetensors").is_file():
        from tests.conftest import require_shared

        require_shared("cache", "huggingface", "hub", model.name, "snapshots", snapshot.name, "model.safetensors")
    return snapshot


def local_minilm(dst: Path) -> Path:
    """all-MiniLM-L6-v2 as a local model folder at ``dst``: the snapshot's files (followed through
    the cache's links) copied and writable, for tests that change a model in place."""
    shutil.copytree(minilm_snapshot(), dst)
    for path in [dst, *dst.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dst


def seeded_projection(dim: int = 128, seed: int = 0, hidden: int = HIDDEN) -> torch.Tensor:
    """The projection the builders write: N(0, 1/hidden) entries, shape (dim, hidden), float32."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((dim, hidden), generator=generator, dtype=torch.float32) / math.sqrt(hidden)


def projection_of(path: str | Path) -> torch.Tensor:
    """The projection matrix (out_features x hidden) stored in a Stanford or PyLate checkpoint folder."""
    path = Path(path)
    if (path / "artifact.metadata").is_file():
        file = path / "model.safetensors"
    elif (path / "modules.json").is_file():
        modules = json.loads((path / "modules.json").read_text())
        dense = next(m for m in modules if m["type"].endswith(".Dense"))
        file = path / dense["path"] / "model.safetensors"
    else:
        raise ValueError(f"{path} is neither a Stanford ColBERT nor a PyLate checkpoint")
    with safe_open(str(file), framework="pt") as f:
        return f.get_tensor("linear.weight")


# --- shared pieces ------------------------------------------------------------------------------


def _encoder_state(snapshot: Path) -> dict[str, torch.Tensor]:
    """MiniLM's BertModel weights as transformers >= 4.31 saves them (``position_ids`` is a
    non-persistent buffer there, so it is not written)."""
    state = load_file(str(snapshot / "model.safetensors"))
    state.pop("embeddings.position_ids", None)
    return state


def _model_config(snapshot: Path, architectures: list[str], vocab_size: int) -> dict:
    """config.json as transformers 4.57 writes a BertConfig (keys sorted, ``dtype``, no _name_or_path)."""
    config = json.loads((snapshot / "config.json").read_text())
    config.pop("_name_or_path", None)
    config.update(architectures=architectures, classifier_dropout=None, dtype="float32",
                  transformers_version=TRANSFORMERS_VERSION, vocab_size=vocab_size)
    return dict(sorted(config.items()))


def _write_json(path: Path, value, indent: int = 2, sort_keys: bool = False, newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    path.write_text(text + ("\n" if newline else ""), encoding="utf-8")


def _added_token(content: str, special: bool) -> dict:
    # The fields of tokenizers' AddedToken; non-special tokens added with add_tokens() are normalized.
    return {"content": content, "lstrip": False, "normalized": not special, "rstrip": False,
            "single_word": False, "special": special}


def _write_tokenizer(snapshot: Path, dst: Path, added: list[str], pad_token: str, model_max_length: int) -> None:
    """The four or five files ``PreTrainedTokenizerFast.save_pretrained`` writes (transformers 4.57) for
    MiniLM's BertTokenizerFast, with ``added`` appended to the vocabulary (ids 30522, 30523, ...)."""
    shutil.copyfile(snapshot / "vocab.txt", dst / "vocab.txt")
    base_vocab = sum(1 for _ in (snapshot / "vocab.txt").open(encoding="utf-8"))
    added_ids = {token: base_vocab + i for i, token in enumerate(added)}

    tokenizer = json.loads((snapshot / "tokenizer.json").read_text(encoding="utf-8"))
    if tokenizer.get("truncation"):  # the tokenizers library writes the direction too
        t = tokenizer["truncation"]
        tokenizer["truncation"] = {"direction": t.get("direction", "Right"), "max_length": t["max_length"],
                                   "strategy": t["strategy"], "stride": t["stride"]}
    for token, token_id in added_ids.items():
        tokenizer["added_tokens"].append({"id": token_id, "content": token, "normalized": True, "special": False})
    fields = ("id", "content", "single_word", "lstrip", "rstrip", "normalized", "special")  # tokenizers' order
    tokenizer["added_tokens"] = [{key: {"single_word": False, "lstrip": False, "rstrip": False, **entry}[key]
                                  for key in fields} for entry in tokenizer["added_tokens"]]
    _write_json(dst / "tokenizer.json", tokenizer, newline=False)

    source = json.loads((snapshot / "tokenizer_config.json").read_text())
    decoder = {str(i): _added_token(content, special=True) for i, content in _TOKENIZER_SPECIALS.items()}
    decoder.update({str(i): _added_token(token, special=False) for token, i in added_ids.items()})
    truncation = tokenizer.get("truncation") or {}
    config = {
        "added_tokens_decoder": decoder,
        "clean_up_tokenization_spaces": False,
        "cls_token": source["cls_token"],
        "do_basic_tokenize": source.get("do_basic_tokenize", True),
        "do_lower_case": source.get("do_lower_case", True),
        "extra_special_tokens": {},
        "mask_token": source["mask_token"],
        "max_length": truncation.get("max_length"),
        "model_max_length": model_max_length,
        "never_split": source.get("never_split"),
        "pad_to_multiple_of": None,
        "pad_token": pad_token,
        "pad_token_type_id": 0,
        "padding_side": "right",
        "sep_token": source["sep_token"],
        "stride": truncation.get("stride", 0),
        "strip_accents": source.get("strip_accents"),
        "tokenize_chinese_chars": source.get("tokenize_chinese_chars", True),
        "tokenizer_class": source.get("tokenizer_class", "BertTokenizer"),
        "truncation_side": "right",
        "truncation_strategy": "longest_first",
        "unk_token": source["unk_token"],
    }
    if not truncation:
        for key in ("max_length", "stride", "truncation_side", "truncation_strategy"):
            config.pop(key)
    _write_json(dst / "tokenizer_config.json", config, sort_keys=True)

    def special(name: str) -> dict:
        entry = _added_token(source[name], special=True)
        entry.pop("special")
        return entry

    # A special token re-pointed at run time (PyLate sets pad = [MASK]) is saved as a bare string.
    specials = {name: special(name) for name in ("cls_token", "mask_token", "pad_token", "sep_token", "unk_token")}
    if pad_token != source["pad_token"]:
        specials["pad_token"] = pad_token
    _write_json(dst / "special_tokens_map.json", specials, sort_keys=True)
    if added_ids:
        _write_json(dst / "added_tokens.json", dict(sorted(added_ids.items())), sort_keys=True)


def _fresh(dst: Path) -> Path:
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    if any(dst.iterdir()):
        raise FileExistsError(f"{dst} is not empty")
    return dst


# --- Stanford ColBERT ---------------------------------------------------------------------------


def _artifact_metadata(dim: int, query_maxlen: int, doc_maxlen: int, mask_punctuation: bool,
                       attend_to_mask_tokens: bool, markers: tuple[str, str] | None = None) -> dict:
    """``ColBERTConfig.export()`` plus ``meta``, in the order colbert-ai writes it
    (colbert/infra/config/base_config.py: save_for_checkpoint -> save). A checkpoint with markers
    of its own (Jina-ColBERT v2) names them in both the ``*_token_id`` and ``*_token`` fields."""
    return {
        "query_token_id": markers[0] if markers else STANFORD_QUERY_MARKER,
        "doc_token_id": markers[1] if markers else STANFORD_DOC_MARKER,
        "query_token": markers[0] if markers else "[Q]",
        "doc_token": markers[1] if markers else "[D]",
        "ncells": None,
        "centroid_score_threshold": None,
        "ndocs": None,
        "load_index_with_mmap": False,
        "index_path": None,
        "index_bsize": 64,
        "nbits": 2,
        "kmeans_niters": 4,
        "resume": False,
        "similarity": "cosine",
        "bsize": 32,
        "accumsteps": 1,
        "lr": 3e-06,
        "maxsteps": 500000,
        "save_every": None,
        "warmup": None,
        "warmup_bert": None,
        "relu": False,
        "nway": 2,
        "use_ib_negatives": False,
        "reranker": False,
        "distillation_alpha": 1.0,
        "ignore_scores": False,
        "model_name": None,
        "query_maxlen": query_maxlen,
        "attend_to_mask_tokens": attend_to_mask_tokens,
        "interaction": "colbert",
        "dim": dim,
        "doc_maxlen": doc_maxlen,
        "mask_punctuation": mask_punctuation,
        "checkpoint": MINILM_ID,
        "triples": None,
        "collection": None,
        "queries": None,
        "index_name": None,
        "overwrite": False,
        "root": "experiments",
        "experiment": "default",
        "index_root": None,
        "name": "2024-01/01/00.00.00",
        "rank": 0,
        "nranks": 1,
        "amp": True,
        "gpus": 0,
        "avoid_fork_if_possible": False,
        "meta": {
            "hostname": "localhost",
            "git_branch": "main",
            "git_hash": None,
            "git_commit_datetime": None,
            "current_datetime": "Jan 01, 2024 ; 12:00AM UTC (+0000)",
            "cmd": "tests/checkpoints.py",
            "version": "colbert-v0.4",
        },
    }


def build_stanford_colbert(dst: Path, dim: int = 128, seed: int = 0, query_maxlen: int = 32, doc_maxlen: int = 180,
                           mask_punctuation: bool = True, attend_to_mask_tokens: bool = False,
                           markers: tuple[str, str] | None = None, model_code: bool = False) -> Path:
    """A Stanford ColBERT checkpoint folder (what ``BaseColBERT.save`` writes) at ``dst``.

    ``markers``: query and document marker tokens added to the vocabulary (ids 30522, 30523) instead
    of colbert-ai's ``[unused0]``/``[unused1]``. ``model_code``: the model class comes from Python
    files in the folder, named by ``auto_map`` in config.json, as Jina-ColBERT's does."""
    dst = _fresh(dst)
    snapshot = minilm_snapshot()
    encoder = _encoder_state(snapshot)
    if markers:
        _grow_vocabulary(encoder, len(markers))

    # HF_ColBERT is a BertPreTrainedModel with the BertModel under base_model_prefix "bert" and
    # ``self.linear = nn.Linear(hidden, dim, bias=False)`` (colbert/modeling/hf_colbert.py).
    state = {f"bert.{key}": tensor.contiguous() for key, tensor in encoder.items()}
    state["linear.weight"] = seeded_projection(dim, seed, encoder["embeddings.word_embeddings.weight"].shape[1])
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})

    vocab_size = encoder["embeddings.word_embeddings.weight"].shape[0]
    config = _model_config(snapshot, ["HF_ColBERT"], vocab_size)
    if model_code:
        config = _with_model_code(dst, config)
    _write_json(dst / "config.json", config)
    # colbert-ai saves the base tokenizer unchanged: its markers are existing vocabulary entries. Markers
    # of a checkpoint's own are added tokens.
    _write_tokenizer(snapshot, dst, added=list(markers or []), pad_token="[PAD]", model_max_length=512)

    metadata = _artifact_metadata(dim, query_maxlen, doc_maxlen, mask_punctuation, attend_to_mask_tokens, markers)
    # ujson.dumps(indent=4) escapes "/" as "\/"; json readers decode both forms.
    text = json.dumps(metadata, indent=4).replace("/", "\\/")
    (dst / "artifact.metadata").write_text(text + "\n", encoding="utf-8")
    return dst


JINA_QUERY_MARKER = "[QueryMarker]"
JINA_DOC_MARKER = "[DocumentMarker]"


def build_jina_style_colbert(dst: Path, dim: int = 128, seed: int = 0) -> Path:
    """A checkpoint laid out as Jina-ColBERT v2's (docs/checkpoint-formats.md, section 3): Stanford
    ``artifact.metadata`` with its own marker tokens, queries attending to their [MASK] expansion,
    a 128-dimensional projection (Matryoshka: 96 and 64 are its truncations), and model code of its
    own. The code here is MiniLM's BertModel under another name, so an independent BertModel forward
    pass gives the reference vectors."""
    return build_stanford_colbert(dst, dim=dim, seed=seed, attend_to_mask_tokens=True,
                                  markers=(JINA_QUERY_MARKER, JINA_DOC_MARKER), model_code=True)


_CONFIG_CODE = '''from transformers import BertConfig


class JinaStyleConfig(BertConfig):
    model_type = "jina_style_bert"
'''

_MODEL_CODE = '''from transformers import BertModel

from .configuration_jina_style import JinaStyleConfig


class JinaStyleModel(BertModel):
    config_class = JinaStyleConfig
'''


def _with_model_code(dst: Path, config: dict) -> dict:
    """config.json pointing at model code in the folder (``auto_map``), and that code."""
    (dst / "configuration_jina_style.py").write_text(_CONFIG_CODE, encoding="utf-8")
    (dst / "modeling_jina_style.py").write_text(_MODEL_CODE, encoding="utf-8")
    config = dict(config, model_type="jina_style_bert", auto_map={
        "AutoConfig": "configuration_jina_style.JinaStyleConfig",
        "AutoModel": "modeling_jina_style.JinaStyleModel",
    })
    return dict(sorted(config.items()))


def _grow_vocabulary(encoder: dict[str, torch.Tensor], n: int) -> None:
    """``n`` new word-embedding rows for added tokens. transformers initialises them from the old rows'
    mean and covariance (``mean_resizing``); their mean is written here so that builds are deterministic."""
    words = encoder["embeddings.word_embeddings.weight"]
    new_rows = words.mean(dim=0, keepdim=True).expand(n, -1)
    encoder["embeddings.word_embeddings.weight"] = torch.cat([words, new_rows]).contiguous()


# --- PyLate -------------------------------------------------------------------------------------


def build_pylate(dst: Path, dim: int = 128, seed: int = 0, query_length: int = 32, document_length: int = 180,
                 do_query_expansion: bool = True, attend_to_expansion_tokens: bool = False,
                 skiplist_words: list[str] | None = None, dense: list[dict] | None = None) -> Path:
    """A PyLate checkpoint folder (what ``pylate.models.ColBERT(MiniLM).save(dst)`` writes) at ``dst``.

    ``dense``: the Dense modules, in order, as dicts of ``out_features``, ``bias``,
    ``activation_function`` and ``use_residual`` (PyLate's Dense config keys); by default one
    ``hidden -> dim`` layer without bias, as PyLate makes for a ColBERT model. Weights are seeded."""
    dst = _fresh(dst)
    snapshot = minilm_snapshot()
    encoder = _encoder_state(snapshot)

    # PyLate adds its prefixes to the tokenizer as new (non-special, normalized) tokens and resizes the
    # word embeddings.
    prefixes = [PYLATE_QUERY_PREFIX, PYLATE_DOC_PREFIX]
    hidden = encoder["embeddings.word_embeddings.weight"].shape[1]
    _grow_vocabulary(encoder, len(prefixes))
    save_file({k: v.contiguous() for k, v in encoder.items()}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    vocab_size = encoder["embeddings.word_embeddings.weight"].shape[0]
    _write_json(dst / "config.json", _model_config(snapshot, ["BertModel"], vocab_size))

    # sentence-transformers' Transformer keeps the base max_seq_length; PyLate sets pad = [MASK] at load
    # time (query expansion pads with [MASK]), and that is what gets saved.
    sbert = json.loads((snapshot / "sentence_bert_config.json").read_text())
    _write_tokenizer(snapshot, dst, added=prefixes, pad_token="[MASK]", model_max_length=sbert["max_seq_length"])
    _write_json(dst / "sentence_bert_config.json", sbert, indent=4, newline=False)

    dense = dense or [{"out_features": dim, "bias": False}]
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    in_features = hidden
    for i, layer in enumerate(dense, start=1):
        modules.append({"idx": i, "name": str(i), "path": f"{i}_Dense", "type": "pylate.models.Dense.Dense"})
        config = {"in_features": in_features, "out_features": layer["out_features"], "bias": layer.get("bias", False),
                  "activation_function": layer.get("activation_function", "torch.nn.modules.linear.Identity"),
                  "use_residual": layer.get("use_residual", False)}
        _write_json(dst / f"{i}_Dense" / "config.json", config, indent=4, newline=False)
        out = config["out_features"]
        tensors = {"linear.weight": seeded_projection(out, seed + i - 1, in_features)}
        if config["bias"]:
            tensors["linear.bias"] = seeded_projection(out, seed + 100 + i, 1)[:, 0].contiguous()
        if config["use_residual"] and in_features != out:
            tensors["residual.weight"] = seeded_projection(out, seed + 200 + i, in_features)
        save_file(tensors, str(dst / f"{i}_Dense" / "model.safetensors"))
        in_features = out
    _write_json(dst / "modules.json", modules, newline=False)

    _write_json(dst / "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": SENTENCE_TRANSFORMERS_VERSION,
                        "transformers": TRANSFORMERS_VERSION, "pytorch": torch.__version__},
        "prompts": {"query": "", "document": ""},
        "default_prompt_name": None,
        "similarity_fn_name": "MaxSim",
        "query_prefix": PYLATE_QUERY_PREFIX,
        "document_prefix": PYLATE_DOC_PREFIX,
        "query_length": query_length,
        "document_length": document_length,
        # PyLate forces attend_to_expansion_tokens off when there is no expansion, before saving.
        "attend_to_expansion_tokens": bool(attend_to_expansion_tokens and do_query_expansion),
        "skiplist_words": list(string.punctuation) if skiplist_words is None else list(skiplist_words),
        "do_query_expansion": do_query_expansion,
    }, newline=False)
    return dst
