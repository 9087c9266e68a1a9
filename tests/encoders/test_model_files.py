"""A local model folder's identity: the hash of the files that shape its vectors, each large one
hashed once per state of the file."""

import time

import pytest

from harness.encoders import model_files
from harness.encoders.model_files import file_sha256, model_files_sha256

SHAPING = ["1_Pooling/config.json", "artifact.metadata", "config.json", "model.safetensors", "modeling_custom.py",
           "special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
NOT_SHAPING = ["README.md", "onnx/model.onnx", ".cache/huggingface/download/model.safetensors.metadata"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))


def model_folder(root):
    for i, name in enumerate(SHAPING + NOT_SHAPING):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(f"{name} {i}\n".encode())
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: large enough to record
    return root


def edit(path):
    path.write_bytes(path.read_bytes() + b"edited")


def test_weights_tokenizer_configs_and_code_are_hashed_readme_exports_and_hidden_folders_not(tmp_path):
    root = model_folder(tmp_path / "model")
    assert model_files.model_files(root) == SHAPING
    seen = {model_files_sha256(root)}
    for name in SHAPING:
        edit(root / name)
        seen.add(model_files_sha256(root))
    assert len(seen) == len(SHAPING) + 1  # every edit of a file that shapes vectors is another model
    for name in NOT_SHAPING:
        edit(root / name)
    assert model_files_sha256(root) in seen and len(seen) == len(SHAPING) + 1
    # Names count as well as contents: the same bytes under another name are another folder.
    (root / "vocab.txt").rename(root / "merges.txt")
    assert model_files_sha256(root) not in seen


def test_a_large_file_is_read_once_per_state_and_again_when_rewritten_in_place(tmp_path):
    weights = model_folder(tmp_path / "model") / "model.safetensors"
    records = tmp_path / "home" / "file-hashes"
    first = file_sha256(weights)
    assert not records.exists()  # just written: a second write could share its timestamps
    time.sleep(model_files._SETTLED_NS / 1e9 + 0.1)
    assert file_sha256(weights) == first
    (record,) = [p for p in records.rglob("*") if p.is_file()]
    assert record.read_text() == first
    # The record is what a re-run reads: the file is not hashed again while its state is unchanged.
    record.write_text("0" * 64)
    assert file_sha256(weights) == "0" * 64
    # Rewritten in place, same size and inode, other content: another state, hashed again.
    with open(weights, "r+b") as f:
        f.write(b"\xff")
    assert file_sha256(weights) not in (first, "0" * 64)
    assert file_sha256(weights) == model_files._content_sha256(weights)
