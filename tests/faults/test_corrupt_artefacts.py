"""Damaged caches and results, through the CLI in fresh processes, as a user meets them.

A damaged cache (token store, compressed store, dataset Parquet cache, dense model facts) is named
in a warning and rebuilt, and the caches end byte for byte as a clean run leaves them, with the
same numbers stored. A damaged result folder is redone by `harness run` (with a warning) and
refused by `report`, `compare` and `regress` (exit 2, one paragraph naming it), which change
nothing. Scores that come out NaN stop the run, and nothing is stored.

One clean smoke run (5 queries, 40 documents) builds every artefact once; each case damages a copy.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.results import load_per_query, load_record, verify_result
from harness.runs import Run

from tests.conftest import run_cli
from tests.faults.state import assert_untouched, tree_state

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SUITE = f"""name: beir
defaults:
  language: en
  split: test
  max_length: {{query: 32, document: 300}}
  metrics: [ndcg@10, recall@100]
datasets:
  scifact:
    source: {{kind: ir_datasets, id: beir/scifact/test}}
retrievers:
  bm25: {{class: bm25}}
  minilm: {{class: late_interaction, params: {{model: {MODEL}, format: plain}}}}
  minilm-int8: {{class: late_interaction, params: {{model: {MODEL}, format: plain, dim: 64, storage: int8}}}}
  dense: {{class: dense, params: {{model: {MODEL}}}}}
  nan: {{class: "tests.faults.nan_retriever:NaNScores"}}
"""
SMOKE = ("--max-queries", "5", "--max-documents", "40", "--latency-queries", "0")
REFUSED = (". Its numbers cannot be trusted, so nothing was read from it. Redo it with `harness run` (which "
           "replaces a damaged result; `harness import --force` for an imported run), or delete the folder.")


@dataclass
class World:
    suite: Path
    home: Path  # HARNESS_HOME: datasets, tokens, model-facts
    results: Path

    def harness(self, *args: str):
        return run_cli(*args, env={"HARNESS_HOME": str(self.home)})

    def run(self, *retrievers: str, results: Path | None = None):
        names = [arg for name in retrievers for arg in ("-r", name)]
        return self.harness("run", str(self.suite), "-d", "scifact", *names, "--results", str(results or self.results),
                            *SMOKE)

    def folder(self, retriever: str, results: Path | None = None) -> Path:
        (found,) = [p for p in ((results or self.results) / "beir" / "scifact").iterdir()
                    if re.fullmatch(rf"{re.escape(retriever)}-[0-9a-f]{{12}}", p.name)]
        return found

    def store(self, kind: str) -> Path:
        """The cached store of ``kind``: fp16 (the token store), int8 (compressed) or dense."""
        for manifest in sorted(self.home.glob("tokens/*/*/manifest.json")):
            m = json.loads(manifest.read_text())
            found = ("int8" if m.get("storage") == "int8" else "dense" if m["key"].get("kind") == "dense"
                     else m.get("dtype"))
            if found == {"fp16": "float16"}.get(kind, kind):
                return manifest.parent
        raise AssertionError(f"no {kind} store under {self.home}")

    def dataset_entry(self) -> Path:
        (manifest,) = self.home.glob("datasets/ir_datasets/*/*/manifest.json")
        return manifest.parent


@pytest.fixture(scope="module")
def clean(cache_root, tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("faults-clean")
    (root / "suite.yaml").write_text(SUITE)
    world = World(root / "suite.yaml", root / "home", root / "results")
    done = world.run("bm25", "minilm", "minilm-int8", "dense")
    assert done.returncode == 0, done.stderr
    return world


@pytest.fixture
def world(clean, tmp_path) -> World:
    shutil.copytree(clean.home, tmp_path / "home")
    shutil.copytree(clean.results, tmp_path / "results")
    return World(clean.suite, tmp_path / "home", tmp_path / "results")


def messages(done) -> list[str]:
    """The harness's own lines on stderr (errors, warnings), without the libraries' progress bars."""
    return [line for line in done.stderr.splitlines() if line.startswith(("error:", "WARNING "))]


def relative_state(root: Path) -> dict[str, str]:
    return {str(Path(path).relative_to(root)): digest for path, digest in tree_state(root).items()}


def without_timings(state: dict[str, str], store: Path, root: Path) -> dict[str, str]:
    """A compressed store's manifest records its build seconds, which differ from build to build."""
    return {path: digest for path, digest in state.items() if path != str((store / "manifest.json").relative_to(root))}


def assert_same_result(folder: Path, clean_folder: Path) -> None:
    verify_result(folder)
    assert load_record(folder).metrics == load_record(clean_folder).metrics
    assert load_per_query(folder).equals(load_per_query(clean_folder))
    assert Run.from_trec(folder / "run.trec.gz").scores() == Run.from_trec(clean_folder / "run.trec.gz").scores()


def overwrite_middle(path: Path, junk: bytes = b"\xff" * 64) -> None:
    """Damage the file in place, keeping its size (what a bad disk block or a stray write does)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + len(junk)] = junk
    path.write_bytes(bytes(data))


def cut_to_half(path: Path) -> tuple[int, int]:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return size // 2, size


def whole_block(path: Path) -> str:
    return f"block 0 of 1 (bytes 0-{path.stat().st_size - 1:,})"


# ---------------------------------------------------------------------------------------------
# Caches: named, rebuilt, the same bytes and numbers as a clean run


def _rebuilt_token_store(world: World, clean: World, store: Path, reason: str) -> None:
    fresh = world.results.parent / "fresh"
    done = world.run("minilm", results=fresh)
    assert done.returncode == 0, done.stderr
    assert messages(done)[0] == f"WARNING harness.index.cache: vector cache damaged: {reason}; rebuilding {store}"
    assert "vector cache: 1 encoded, 0 reused" in done.stdout
    assert relative_state(world.home) == relative_state(clean.home)  # rebuilt byte for byte, nothing else touched
    assert_same_result(world.folder("minilm", fresh), clean.folder("minilm"))


def test_token_vectors_overwritten_in_place_are_detected_and_re_encoded(world, clean):
    store = world.store("fp16")
    vectors = store / "vectors.bin"
    overwrite_middle(vectors)
    _rebuilt_token_store(world, clean, store, f"{vectors} {whole_block(vectors)} does not match its checksum")


def test_token_offsets_cut_short_are_detected_and_re_encoded(world, clean):
    store = world.store("fp16")
    offsets = store / "offsets.npy"
    size = offsets.stat().st_size
    with open(offsets, "r+b") as f:
        f.truncate(size - 8)
    _rebuilt_token_store(world, clean, store, f"{offsets} is {size - 8:,} bytes, its manifest says {size:,}")


def test_token_store_manifest_cut_short_is_detected_and_re_encoded(world, clean):
    store = world.store("fp16")
    manifest = store / "manifest.json"
    cut_to_half(manifest)
    _rebuilt_token_store(world, clean, store, f"{manifest} is not JSON (cut short or overwritten)")


def test_token_store_from_before_checksums_is_re_encoded_once(world, clean):
    store = world.store("fp16")
    manifest = store / "manifest.json"
    old = {k: v for k, v in json.loads(manifest.read_text()).items() if k not in ("files", "sealed_crc32")}
    manifest.write_text(json.dumps(old, indent=2, sort_keys=True))
    _rebuilt_token_store(world, clean, store, f"{manifest} has no checksum (written before checksums were recorded)")


def test_compressed_store_overwritten_in_place_is_detected_and_rebuilt(world, clean):
    store = world.store("int8")
    codes = store / "codes.bin"
    overwrite_middle(codes, b"\x7f" * 32)
    fresh = world.results.parent / "fresh"
    done = world.run("minilm-int8", results=fresh)
    assert done.returncode == 0, done.stderr
    assert messages(done)[0] == (f"WARNING harness.index.cache: compressed store damaged: {codes} {whole_block(codes)} "
                                 f"does not match its checksum; rebuilding {store}")
    assert "compressed stores: 1 built, 0 reused" in done.stdout and "vector cache: 0 encoded, 1 reused" in done.stdout
    assert (without_timings(relative_state(world.home), store, world.home)
            == without_timings(relative_state(clean.home), clean.store("int8"), clean.home))
    assert_same_result(world.folder("minilm-int8", fresh), clean.folder("minilm-int8"))


def _reread_dataset(world: World, clean: World, reason: str) -> None:
    entry = world.dataset_entry()
    fresh = world.results.parent / "fresh"
    done = world.run("bm25", results=fresh)
    assert done.returncode == 0, done.stderr
    assert messages(done)[0] == (f"WARNING harness.data.load: dataset cache damaged: {reason}; reading ir_datasets "
                                 f"beir/scifact/test again into {entry}")
    assert relative_state(world.home) == relative_state(clean.home)
    assert_same_result(world.folder("bm25", fresh), clean.folder("bm25"))


def test_dataset_cache_cut_short_is_detected_and_read_again(world, clean):
    documents = world.dataset_entry() / "documents.parquet"
    half, size = cut_to_half(documents)
    _reread_dataset(world, clean, f"{documents} is {half:,} bytes, its manifest says {size:,}")


def test_dataset_cache_with_a_flipped_bit_is_detected_and_read_again(world, clean):
    queries = world.dataset_entry() / "queries.parquet"
    data = bytearray(queries.read_bytes())
    data[len(data) // 2] ^= 0x10
    queries.write_bytes(bytes(data))
    _reread_dataset(world, clean, f"{queries} {whole_block(queries)} does not match its checksum")


def test_dense_model_facts_edited_are_read_off_the_model_again(world, clean):
    (facts,) = world.home.glob("model-facts/*.json")
    facts.write_text(facts.read_text().replace('"max_seq_length": 256', '"max_seq_length": 128'))  # valid JSON
    before = tree_state(world.results)
    done = world.run("dense")
    assert done.returncode == 0, done.stderr
    assert messages(done)[0] == (f"WARNING harness.retrievers.dense: model facts damaged: {facts} does not match its "
                                 "own checksum (edited or overwritten); reading them off the model again")
    # The true facts give the same protocol card, so the same key: the stored result is found.
    assert done.stdout.split()[0] == "skipped"
    assert_untouched(before, world.results)
    assert relative_state(world.home) == relative_state(clean.home)


# ---------------------------------------------------------------------------------------------
# Result folders: `run` redoes them; readers refuse them and change nothing


def test_run_redoes_a_result_whose_record_was_cut_short(world, clean):
    folder = world.folder("bm25")
    half, size = cut_to_half(folder / "record.json")
    before = tree_state(world.home)
    done = world.run("bm25")
    assert done.returncode == 0, done.stderr
    assert messages(done)[0] == (f"WARNING harness.results: result folder damaged: {folder / 'record.json'} is "
                                 f"{half:,} bytes, its manifest says {size:,}; redoing it")
    assert done.stdout.split()[0] == "done"
    assert_same_result(folder, clean.folder("bm25"))
    assert_untouched(before, world.home)
    assert sorted(p.name for p in folder.parent.iterdir()) == sorted(p.name for p in clean.folder("bm25").parent.iterdir())


def _refused(world: World, done, first_line: str, before: dict[str, str], *more: Path) -> None:
    assert done.returncode == 2, done.stderr
    assert messages(done)[0] == first_line
    assert_untouched(before, world.results, world.home, *more)


def test_report_refuses_a_record_overwritten_with_junk(world):
    folder = world.folder("dense")
    record = folder / "record.json"
    record.write_bytes(b"\x00" * record.stat().st_size)  # not JSON, same size
    out = world.results.parent / "reports"
    before = tree_state(world.results, world.home, out)
    done = world.harness("report", str(world.results), "--out", str(out), "--no-plots")
    _refused(world, done, f"error: The result folder {folder} is damaged: record.json {whole_block(record)} does not "
                          f"match its checksum{REFUSED}", before, out)


def test_report_refuses_a_folder_without_its_manifest(world):
    folder = world.folder("minilm")
    (folder / "manifest.json").unlink()  # a folder from before checksums, or copied by hand without it
    out = world.results.parent / "reports"
    before = tree_state(world.results, world.home, out)
    done = world.harness("report", str(world.results), "--out", str(out), "--no-plots")
    _refused(world, done, f"error: The result folder {folder} is damaged: manifest.json is missing (the folder was "
                          f"never finished, or predates checksums){REFUSED}", before, out)


def test_compare_refuses_per_query_scores_cut_short(world):
    folder = world.folder("bm25")
    half, size = cut_to_half(folder / "per_query.parquet")
    before = tree_state(world.results, world.home)
    done = world.harness("compare", str(world.results), str(world.results))
    _refused(world, done, f"error: The result folder {folder} is damaged: per_query.parquet is {half:,} bytes, its "
                          f"manifest says {size:,}{REFUSED}", before)


def test_regress_refuses_a_run_file_cut_short(world):
    folder = world.folder("minilm-int8")
    half, size = cut_to_half(folder / "run.trec.gz")
    before = tree_state(world.results, world.home)
    done = world.harness("regress", "--baseline", str(world.results), "--candidate", str(world.results))
    _refused(world, done, f"error: The result folder {folder} is damaged: run.trec.gz is {half:,} bytes, its manifest "
                          f"says {size:,}{REFUSED}", before)


# ---------------------------------------------------------------------------------------------
# NaN scores: an error, never a stored result


def test_nan_scores_from_a_retriever_stop_the_run_and_store_nothing(world):
    before = tree_state(world.results, world.home)
    done = world.run("nan")
    assert done.returncode == 2, done.stderr
    # 5 queries x 40 documents, every third one NaN: 13 per query.
    assert re.fullmatch(r"error: Retriever 'nan' on dataset 'scifact' of suite 'beir' gave 65 scores that are not "
                        r"finite numbers \(the first: nan for query '\w+', document '\w+'\); nothing was stored\. "
                        r"Find where it comes from \(a model's weights, a division by a zero norm\), then run it "
                        r"again\.", messages(done)[0])
    assert_untouched(before, world.results, world.home)


def test_an_imported_run_with_nan_scores_is_refused_and_nothing_stored(world, tmp_path):
    run_file = tmp_path / "theirs.trec"
    run_file.write_text("1 Q0 31715818 1 12.5 theirs\n1 Q0 13734012 2 nan theirs\n3 Q0 14717500 1 3.0 theirs\n")
    before = tree_state(world.results, world.home)
    done = world.harness("import", str(run_file), "--suite", str(world.suite), "-d", "scifact", "--name", "theirs",
                         "--results", str(world.results))
    assert done.returncode == 2, done.stderr
    first = messages(done)[0]
    assert first.startswith("error: ") and str(run_file) in first and "nan" in first.lower(), first
    assert_untouched(before, world.results, world.home)
