"""Loading checkpoints in the formats people publish, through transformers.

- ``stanford``: Stanford ColBERT (colbert-ir/colbertv2.0, answerai-colbert-small, JaColBERTv2.5): a
  BERT-family encoder and the ``linear`` projection in one weights file, settings in
  ``artifact.metadata``.
- ``pylate``: PyLate / sentence-transformers ColBERT: ``modules.json`` with Transformer + Dense,
  settings in ``config_sentence_transformers.json``.
- ``plain``: any encoder used zero-shot as a multi-vector model: last hidden states, no projection.

Several checkpoints of one architecture can be merged (JaColBERTv2.5's checkpoint averaging): the
weighted mean of their weights and projections is evaluated as a model of its own, with every
source's identity and weight in the protocol card, and nothing written to disk.

Checkpoints with custom model code (Jina-ColBERT) load only with ``trust_remote_code=True``.
Whatever settings are used are returned in ``EncoderSettings`` and end up in the protocol card.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.encoders.model_files import model_files_sha256
from harness.encoders.projection import IDENTITY, DenseLayer, Projection
from harness.errors import DataUnavailableError, UnknownNameError

FORMATS = ("auto", "stanford", "pylate", "plain")


@dataclass(frozen=True)
class EncoderSettings:
    """How texts become token vectors; every field can change scores."""

    format: str
    query_marker: str | None = None  # token inserted after [CLS]
    document_marker: str | None = None
    query_maxlen: int = 32
    doc_maxlen: int = 300
    query_expansion: bool = True  # pad queries with [MASK] to query_maxlen (ColBERT's augmentation)
    attend_to_expansion: bool = False
    skiplist: tuple[str, ...] = ()  # document tokens whose vectors are dropped
    normalize: bool = True
    dim: int | None = None  # output dimension of the projection (None: hidden size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PUNCTUATION = tuple(string.punctuation)


@dataclass
class Checkpoint:
    path: Path
    identity: dict[str, Any]  # name, format, and the hub revision or a local folder's files hash
    settings: EncoderSettings
    projection: Projection | None = None  # hidden states -> token vectors; None: the hidden states
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # A merged checkpoint: its sources and their (normalised) weights; ``path`` is the first's.
    sources: list[tuple[Checkpoint, float]] = field(default_factory=list)

    @property
    def output_dim(self) -> int | None:
        """Width of the token vectors: the projection's, else the config's hidden size (None: unknown
        without loading the model)."""
        if self.settings.dim is not None:
            return self.settings.dim
        config = self.path / "config.json"
        hidden = json.loads(config.read_text()).get("hidden_size") if config.is_file() else None
        return hidden if isinstance(hidden, int) else None

    def _load_one(self):
        from transformers import AutoModel
        from transformers.utils import logging

        # transformers logs a "LOAD REPORT" table for every key it did not match; for a Stanford
        # checkpoint that is always the projection (``linear.*``), which this module reads itself.
        # The report is silenced for this call (the library's own verbosity: a level set on the
        # loading module's logger instead turns on another warning) and its one real danger checked
        # here: an encoder weight missing from the file would be randomly initialised, and score.
        # Its "Loading weights" bar is silenced too (the CLI silences it through TQDM_DISABLE; a
        # bench or a test calling this would print one per model): the harness shows its own steps.
        verbosity, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        try:
            model, info = AutoModel.from_pretrained(self.path, trust_remote_code=self.trust_remote_code,
                                                    output_loading_info=True)
        finally:
            logging.set_verbosity(verbosity)
            if bar:
                logging.enable_progress_bar()
        check_loaded_weights(self.path, info)
        return model.eval()

    def load_model(self):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
        if not self.sources:
            return tokenizer, self._load_one()
        model = self._load_one()
        merged = {name: tensor.detach().clone().double() * 0 for name, tensor in model.state_dict().items()}
        for source, weight in self.sources:
            state = source._load_one().state_dict()
            if {k: v.shape for k, v in state.items()} != {k: v.shape for k, v in merged.items()}:
                raise UnknownNameError(f"Cannot merge {source.identity['model']!r} into {self.path}: its "
                                       "parameters' names or shapes differ.")
            for name, tensor in state.items():
                merged[name] += weight * tensor.double()
        model.load_state_dict({name: tensor.to(model.state_dict()[name].dtype) for name, tensor in merged.items()})
        return tokenizer, model.eval()


# Weights an encoder may lack without changing its token vectors: BERT's pooler (the [CLS] head for
# next-sentence prediction) is never used for last hidden states, and ColBERT checkpoints omit it.
_UNUSED_WEIGHTS = ("pooler.",)
# Keys a checkpoint holds beside the encoder that this module reads itself (the projection).
_PROJECTION_WEIGHTS = ("linear.",)


def check_loaded_weights(path: Path, info: dict[str, Any]) -> None:
    """Refuse a model whose weights file lacks encoder weights (transformers would initialise them
    at random); warn about keys in the file that neither the encoder nor the projection uses."""
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(_UNUSED_WEIGHTS))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UnknownNameError(
            f"{path}: the weights file lacks {len(missing)} of the encoder's weights ({shown}); transformers "
            f"would initialise them at random. The checkpoint is incomplete or its config.json names "
            f"another architecture: re-download or re-export it.")
    unused = sorted(k for k in info.get("unexpected_keys", ()) if not k.startswith(_PROJECTION_WEIGHTS))
    if unused:
        import warnings

        shown = ", ".join(unused[:5]) + (f" and {len(unused) - 5} more" if len(unused) > 5 else "")
        warnings.warn(f"{path}: {len(unused)} weights in the file are not used by the encoder ({shown}).",
                      stacklevel=3)


def resolve_path(name_or_path: str, revision: str | None = None) -> tuple[Path, str | None]:
    """A local folder as is; a Hugging Face id through the hub cache (offline when HF_HUB_OFFLINE=1)."""
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local, None
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(name_or_path, revision=revision))
    except Exception as e:  # hub errors differ by version; all mean the same to the user
        home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
        folder = Path(home) / "hub" / ("models--" + name_or_path.replace("/", "--"))
        raise DataUnavailableError(
            f"Model {name_or_path!r} is neither a local folder nor in the Hugging Face cache, and could not "
            f"be downloaded ({type(e).__name__}). The cache is HF_HOME={home}; the model would be at {folder}. "
            "Download it on a networked machine (`huggingface-cli download "
            f"{name_or_path}`) and copy the cache, set HF_HOME to a cache that holds it, or give a local folder."
        ) from None
    return path, path.name if path.parent.name == "snapshots" else revision


def model_identity(path: Path, revision: str | None) -> dict[str, str]:
    """A hub snapshot by its commit; a local folder, which can change in place, by the hash of its
    weights, tokenizer and config files (harness/encoders/model_files.py)."""
    return {"revision": revision} if revision else {"files_sha256": model_files_sha256(path)}


def detect_format(path: Path) -> str:
    if (path / "artifact.metadata").is_file():
        return "stanford"
    modules = path / "modules.json"
    if modules.is_file() and any("Dense" in m.get("type", "") for m in json.loads(modules.read_text())):
        return "pylate"
    return "plain"


def _load_tensor(path: Path, keys: tuple[str, ...]):
    """The first of ``keys`` found in the folder's safetensors or PyTorch weights."""
    import torch

    for file in sorted(path.glob("*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            for key in keys:
                if key in f.keys():
                    return f.get_tensor(key)
    for file in sorted(path.glob("*.bin")):
        state = torch.load(file, map_location="cpu", weights_only=True)
        for key in keys:
            if key in state:
                return state[key]
    return None


def _stanford(path: Path) -> tuple[EncoderSettings, Projection]:
    meta = json.loads((path / "artifact.metadata").read_text())
    weight = _load_tensor(path, ("linear.weight",))
    if weight is None:
        raise UnknownNameError(f"{path} has artifact.metadata but no `linear.weight` in its weights: not a "
                               "Stanford ColBERT checkpoint.")
    projection = Projection((DenseLayer(weight),))
    _check_stanford_scoring(path / "artifact.metadata", meta, projection.dim)
    settings = EncoderSettings(
        format="stanford",
        query_marker=meta.get("query_token_id", "[unused0]"),
        document_marker=meta.get("doc_token_id", "[unused1]"),
        query_maxlen=int(meta.get("query_maxlen", 32)),
        doc_maxlen=int(meta.get("doc_maxlen", 220)),  # colbert-ai's DocSettings default
        query_expansion=True,
        attend_to_expansion=bool(meta.get("attend_to_mask_tokens", False)),
        skiplist=PUNCTUATION if meta.get("mask_punctuation", True) else (),
        dim=projection.dim,
    )
    return settings, projection


def _check_stanford_scoring(file: Path, meta: dict, dim: int) -> None:
    """Refuse the settings under which colbert-ai's vectors or scores are not what the harness
    computes. ``similarity: l2`` is accepted: colbert-ai applies it only in its training score, and
    its search, like the harness, takes the dot product of unit vectors (which l2 ranks alike)."""
    if meta.get("interaction", "colbert") != "colbert":
        raise UnknownNameError(f"{file}: `interaction` {meta['interaction']!r} is not supported; the harness scores "
                               "with ColBERT's sum of MaxSim (`interaction: colbert`).")
    if meta.get("similarity", "cosine") not in ("cosine", "l2"):
        raise UnknownNameError(f"{file}: `similarity` {meta['similarity']!r} is neither cosine nor l2.")
    if "dim" in meta and int(meta["dim"]) != dim:
        raise UnknownNameError(f"{file}: `dim` is {meta['dim']}, but the weights' `linear.weight` has {dim} rows.")


def _pylate(path: Path, trust_remote_code: bool = False) -> tuple[EncoderSettings, Projection]:
    projection = _pylate_projection(path, json.loads((path / "modules.json").read_text()), trust_remote_code)
    st_config = path / "config_sentence_transformers.json"
    config = json.loads(st_config.read_text()) if st_config.is_file() else {}
    prompts = config.get("prompts", {})
    settings = EncoderSettings(
        format="pylate",
        # PyLate adds the prefixes, trailing space included, to the vocabulary as tokens.
        query_marker=config.get("query_prefix") or prompts.get("query") or "[Q] ",
        document_marker=config.get("document_prefix") or prompts.get("document") or "[D] ",
        query_maxlen=int(config.get("query_length", 32)),
        doc_maxlen=int(config.get("document_length", 180)),
        query_expansion=bool(config.get("do_query_expansion", True)),
        attend_to_expansion=bool(config.get("attend_to_expansion_tokens", False)),
        skiplist=tuple(config.get("skiplist_words", PUNCTUATION)),
        dim=projection.dim,
    )
    return settings, projection


def _pylate_projection(path: Path, modules: list[dict], trust_remote_code: bool) -> Projection:
    """The Dense modules after the Transformer, in order, as PyLate's ``Dense.load`` reads them.
    Anything else in ``modules.json`` is refused by name: its effect on the vectors would be lost."""
    layers = []
    for module in modules:
        kind = module.get("type", "")
        name = kind.rsplit(".", 1)[-1]
        if name == "Transformer" and not layers:
            continue
        if name != "Dense":
            raise UnknownNameError(f"{path / 'modules.json'}: module {module.get('name')!r} is {kind!r}; a PyLate "
                                   "checkpoint is read here as a Transformer followed by Dense modules only.")
        folder = path / module.get("path", "")
        config_file = folder / "config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        weight = _load_tensor(folder, ("linear.weight",))
        if weight is None:
            raise UnknownNameError(f"{folder} holds no `linear.weight`: not a PyLate Dense module.")
        bias = None
        if config.get("bias", True):  # PyLate's Dense default
            bias = _load_tensor(folder, ("linear.bias",))
            if bias is None:
                raise UnknownNameError(f"{config_file}: `bias` is true but the weights hold no `linear.bias`.")
        activation = config.get("activation_function", IDENTITY)
        if not activation.startswith("torch.") and not trust_remote_code:
            # PyLate falls back to Identity with a warning here; vectors made so would not be the model's.
            raise UnknownNameError(f"{config_file}: `activation_function` {activation!r} is not torch's own: it is "
                                   "imported only when asked (`trust_remote_code: true`).")
        residual = bool(config.get("use_residual", False))
        residual_weight = None
        if residual and weight.shape[0] != weight.shape[1]:
            residual_weight = _load_tensor(folder, ("residual.weight",))
            if residual_weight is None:
                raise UnknownNameError(f"{config_file}: `use_residual` is true with in_features != out_features, "
                                       "but the weights hold no `residual.weight`.")
        layers.append(DenseLayer(weight, bias, activation, residual, residual_weight))
    if not layers:
        raise UnknownNameError(f"{path / 'modules.json'} lists no Dense module: not a PyLate checkpoint.")
    return Projection(tuple(layers))


def load_checkpoint(name_or_path: str | list[str], format: str = "auto", overrides: dict[str, Any] | None = None,
                    revision: str | None = None, trust_remote_code: bool = False,
                    merge_weights: list[float] | None = None) -> Checkpoint:
    """One checkpoint, or (a list of names) the weighted average of several of one architecture."""
    if isinstance(name_or_path, (list, tuple)):
        parts = [load_checkpoint(name, format, overrides, revision, trust_remote_code) for name in name_or_path]
        return merge_checkpoints(parts, merge_weights)
    if merge_weights is not None:
        raise UnknownNameError("`merge_weights` needs `model` to be a list of checkpoints to merge.")
    if format not in FORMATS:
        raise UnknownNameError(f"Unknown checkpoint format {format!r}; choose from {', '.join(FORMATS)}.")
    path, rev = resolve_path(name_or_path, revision)
    config_file = path / "config.json"
    if config_file.is_file() and "auto_map" in json.loads(config_file.read_text()) and not trust_remote_code:
        raise UnknownNameError(
            f"Model {name_or_path!r} ships its own model code (config.json has auto_map). It is run only when "
            "asked: set `trust_remote_code: true` in the retriever's params (or on the command line).")
    kind = detect_format(path) if format == "auto" else format
    if kind == "stanford":
        settings, projection = _stanford(path)
    elif kind == "pylate":
        settings, projection = _pylate(path, trust_remote_code)
    else:
        settings, projection = EncoderSettings(format="plain", query_expansion=False, skiplist=PUNCTUATION), None
    unknown = set(overrides or {}) - set(EncoderSettings.__dataclass_fields__)
    if unknown:
        raise UnknownNameError(f"Unknown encoder settings {sorted(unknown)}; known: "
                               f"{', '.join(EncoderSettings.__dataclass_fields__)}.")
    settings = replace(settings, **(overrides or {}))
    identity = {"model": name_or_path, "format": kind}
    identity.update(model_identity(path, rev))
    if projection is not None:  # the layers as read, for a reader of the card
        identity["projection"] = projection.describe()
    if trust_remote_code:  # the checkpoint's own code ran: the card says so
        identity["trust_remote_code"] = True
    return Checkpoint(path=path, identity=identity, settings=settings, projection=projection,
                      trust_remote_code=trust_remote_code)


_ARCHITECTURE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                       "intermediate_size", "vocab_size", "max_position_embeddings")


def _architecture(checkpoint: Checkpoint) -> dict[str, Any]:
    """What must agree for weights to be averaged: the config's shape-defining fields and the
    projection's shape (weight files differ in naming and saved buffers, so they are not compared)."""
    config = json.loads((checkpoint.path / "config.json").read_text()) if (checkpoint.path / "config.json").is_file() else {}
    out = {k: config.get(k) for k in _ARCHITECTURE_FIELDS}
    out["projection"] = None if checkpoint.projection is None else checkpoint.projection.signature()
    return out


def merge_checkpoints(parts: list[Checkpoint], weights: list[float] | None = None) -> Checkpoint:
    """The weighted average (uniform by default) of checkpoints that share architecture, tokenizer
    and settings. Anything that differs is refused by name: averaging unlike weights is meaningless."""
    names = [p.identity["model"] for p in parts]
    if len(parts) < 2:
        raise UnknownNameError(f"Merging needs at least two checkpoints; got {names}.")
    weights = [1.0] * len(parts) if weights is None else [float(w) for w in weights]
    if len(weights) != len(parts) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UnknownNameError(f"`merge_weights` {weights} must give one non-negative weight per checkpoint "
                               f"({len(parts)}: {names}), not all zero.")
    total = sum(weights)
    weights = [w / total for w in weights]
    first = parts[0]
    architecture = _architecture(first)
    for other in parts[1:]:
        other_architecture = _architecture(other)
        if other_architecture != architecture:
            diff = sorted(k for k in architecture if other_architecture[k] != architecture[k])
            raise UnknownNameError(f"Cannot merge {names[0]!r} and {other.identity['model']!r}: not one "
                                   f"architecture (they differ in {', '.join(diff)}).")
        if other.settings != first.settings:
            diff = sorted(k for k, v in first.settings.to_dict().items() if other.settings.to_dict()[k] != v)
            raise UnknownNameError(f"Cannot merge {names[0]!r} and {other.identity['model']!r}: their encoder "
                                   f"settings differ in {diff}.")
    projection = None
    if first.projection is not None:
        projection = Projection.average([p.projection for p in parts], weights)
    identity = {"merge": [p.identity for p in parts], "weights": weights, "format": first.identity["format"]}
    return Checkpoint(path=first.path, identity=identity, settings=first.settings, projection=projection,
                      trust_remote_code=first.trust_remote_code, sources=list(zip(parts, weights)))
