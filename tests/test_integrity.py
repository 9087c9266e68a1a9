"""Checksums in manifests: what each kind of damage is reported as."""

import json
import zlib

import pytest

from harness import integrity
from harness.errors import CorruptFileError


def test_block_checksums_name_the_damaged_block(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(20)))
    entry = integrity.file_checksums(path, block_bytes=8)
    assert entry == {"bytes": 20, "block_bytes": 8,
                     "crc32": [zlib.crc32(bytes(range(0, 8))), zlib.crc32(bytes(range(8, 16))),
                               zlib.crc32(bytes(range(16, 20)))]}
    integrity.verify_file(path, entry)
    data = bytearray(path.read_bytes())
    data[9] ^= 1  # one bit, same size
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=r"f\.bin block 1 of 3 \(bytes 8-15\) does not match its checksum"):
        integrity.verify_file(path, entry)
    path.write_bytes(bytes(range(19)))
    with pytest.raises(CorruptFileError, match=r"f\.bin is 19 bytes, its manifest says 20$"):
        integrity.verify_file(path, entry)
    path.unlink()
    with pytest.raises(CorruptFileError, match=r"f\.bin is missing$"):
        integrity.verify_file(path, entry)


def test_an_empty_file_has_no_blocks_and_verifies(tmp_path):
    (tmp_path / "e").write_bytes(b"")
    entry = integrity.file_checksums(tmp_path / "e")
    assert entry == {"bytes": 0, "block_bytes": integrity.BLOCK_BYTES, "crc32": []}
    integrity.verify_file(tmp_path / "e", entry)


def test_a_sealed_manifest_detects_edits_cuts_and_old_manifests(tmp_path):
    path = tmp_path / "manifest.json"
    text = integrity.seal({"dim": 384, "name": "é"})
    assert integrity.unseal(text, path) == {"dim": 384, "name": "é"}
    with pytest.raises(CorruptFileError, match=r"manifest\.json does not match its own checksum"):
        integrity.unseal(text.replace("384", "284"), path)  # still valid JSON, wrong number
    with pytest.raises(CorruptFileError, match=r"manifest\.json is not JSON \(cut short or overwritten\)"):
        integrity.unseal(text[: len(text) // 2], path)
    with pytest.raises(CorruptFileError, match=r"manifest\.json has no checksum \(written before checksums"):
        integrity.unseal(json.dumps({"dim": 384}), path)


def test_read_manifest_checks_the_seal_the_required_files_and_their_bytes(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"alpha")
    (tmp_path / "b.bin").write_bytes(b"beta")
    written = integrity.write_manifest(tmp_path / "manifest.json", {"kind": "test"}, ["b.bin", "a.bin"])
    assert list(written["files"]) == ["a.bin", "b.bin"]
    assert integrity.read_manifest(tmp_path / "manifest.json", ["a.bin"]) == written
    with pytest.raises(CorruptFileError, match=r"manifest\.json lists no checksum for c\.bin"):
        integrity.read_manifest(tmp_path / "manifest.json", ["a.bin", "c.bin"])
    (tmp_path / "b.bin").write_bytes(b"bets")
    with pytest.raises(CorruptFileError, match=r"b\.bin block 0 of 1 \(bytes 0-3\) does not match"):
        integrity.read_manifest(tmp_path / "manifest.json")
    with pytest.raises(CorruptFileError, match=r"nowhere[/\\]manifest\.json is missing"):
        integrity.read_manifest(tmp_path / "nowhere" / "manifest.json")
