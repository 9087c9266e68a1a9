"""Loading checkpoints in the formats people publish, through transformers.

- ``stanford``: Stanford ColBERT (colbert-ir/colbertv2.0, answerai-colbert-small, JaColBERTv2.5): a
  BERT-family encoder and the ``linear`` projection in one weights file, settings in
  ``artifact.metadata``.
- ``pylate``: PyLate / sentence-transformers ColBERT: ``modules.json`` with Transformer + Dense,
  settings in ``config_sentence_transformers.json``.
- ``plain``: any encoder used zero-shot as a multi-vector model: last hidden states, no projection.

Checkpoints with custom model code (Jina-ColBERT) load only with ``trust_remote_code=True``.
Whatever settings are used are returned in ``EncoderSettings`` and end up in the protocol card.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

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
    identity: dict[str, Any]  # name, format, revision or weights hash
    settings: EncoderSettings
    projection: Any = None  # torch.Tensor (dim, hidden) or None
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def load_model(self):
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
        model = AutoModel.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
        return tokenizer, model.eval()


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


def _weights_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                       if p.suffix in (".safetensors", ".bin") and p.is_file()):
        digest.update(name.encode())
        with open(path / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


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


def _stanford(path: Path) -> tuple[EncoderSettings, Any]:
    meta = json.loads((path / "artifact.metadata").read_text())
    projection = _load_tensor(path, ("linear.weight",))
    if projection is None:
        raise UnknownNameError(f"{path} has artifact.metadata but no `linear.weight` in its weights: not a "
                               "Stanford ColBERT checkpoint.")
    settings = EncoderSettings(
        format="stanford",
        query_marker=meta.get("query_token_id", "[unused0]"),
        document_marker=meta.get("doc_token_id", "[unused1]"),
        query_maxlen=int(meta.get("query_maxlen", 32)),
        doc_maxlen=int(meta.get("doc_maxlen", 180)),
        query_expansion=True,
        attend_to_expansion=bool(meta.get("attend_to_mask_tokens", False)),
        skiplist=PUNCTUATION if meta.get("mask_punctuation", True) else (),
        dim=int(projection.shape[0]),
    )
    return settings, projection


def _pylate(path: Path) -> tuple[EncoderSettings, Any]:
    modules = json.loads((path / "modules.json").read_text())
    dense = next(m for m in modules if "Dense" in m.get("type", ""))
    projection = _load_tensor(path / dense["path"], ("linear.weight",))
    if projection is None:
        raise UnknownNameError(f"{path / dense['path']} holds no `linear.weight`: not a PyLate Dense module.")
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
        dim=int(projection.shape[0]),
    )
    return settings, projection


def load_checkpoint(name_or_path: str, format: str = "auto", overrides: dict[str, Any] | None = None,
                    revision: str | None = None, trust_remote_code: bool = False) -> Checkpoint:
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
        settings, projection = _pylate(path)
    else:
        settings, projection = EncoderSettings(format="plain", query_expansion=False, skiplist=PUNCTUATION), None
    unknown = set(overrides or {}) - set(EncoderSettings.__dataclass_fields__)
    if unknown:
        raise UnknownNameError(f"Unknown encoder settings {sorted(unknown)}; known: "
                               f"{', '.join(EncoderSettings.__dataclass_fields__)}.")
    settings = replace(settings, **(overrides or {}))
    identity = {"model": name_or_path, "format": kind}
    identity.update({"revision": rev} if rev else {"weights_sha256": _weights_sha256(path)})
    return Checkpoint(path=path, identity=identity, settings=settings, projection=projection,
                      trust_remote_code=trust_remote_code)
