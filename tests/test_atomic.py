"""What killed runs leave, and folders that cannot be written."""

import threading

import pytest

from harness import atomic, locks
from harness.errors import HarnessError


def test_sweep_removes_leftovers_whose_writer_is_gone_and_keeps_a_live_ones(tmp_path):
    folder = tmp_path / "beir" / "scifact"
    (folder / "bm25-abc").mkdir(parents=True)
    (folder / "bm25-abc" / "record.json").write_text("{}")
    (folder / ".tmp-bm25-abc-0123abcd").mkdir()
    (folder / ".tmp-bm25-abc-0123abcd" / "run.trec.gz").write_bytes(b"partial")
    (folder / ".trash-bm25-abc-89abcdef").mkdir()  # killed after the forced swap: the new one is in place
    (folder / ".lock-bm25-abc").write_text("")
    (folder / ".tmp-live-76543210").mkdir()
    with locks.hold(folder / "live"):
        # The sweep runs in another thread, as another process's would: the lock is not its own.
        removed = []
        sweeper = threading.Thread(target=lambda: removed.extend(atomic.sweep(tmp_path)))
        sweeper.start()
        sweeper.join(10)
        assert sorted(p.name for p in folder.iterdir()) == [".lock-live", ".tmp-live-76543210", "bm25-abc"]
    assert sorted(p.name for p in removed) == [".lock-bm25-abc", ".tmp-bm25-abc-0123abcd", ".trash-bm25-abc-89abcdef"]
    assert (folder / "bm25-abc" / "record.json").read_text() == "{}"


def test_sweep_puts_back_a_folder_swapped_out_by_a_killed_forced_write(tmp_path):
    (tmp_path / ".trash-bm25-abc-89abcdef").mkdir()
    (tmp_path / ".trash-bm25-abc-89abcdef" / "record.json").write_text("old")
    (tmp_path / ".tmp-bm25-abc-0123abcd").mkdir()
    atomic.sweep(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["bm25-abc"]
    assert (tmp_path / "bm25-abc" / "record.json").read_text() == "old"


def test_temporary_names_are_what_the_sweep_recognises(tmp_path):
    for kind in (atomic.TMP, atomic.TRASH):
        name = atomic.temporary(tmp_path / "bm25-abc", kind).name
        assert name.startswith(f"{kind}bm25-abc-") and atomic._LEFTOVER.match(name)["name"] == "bm25-abc"


def test_a_folder_under_a_file_is_not_writable_and_a_new_one_is(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HarnessError) as e:
        atomic.check_writable(tmp_path / "file" / "results", "The results folder", "Fix it.")
    assert str(e.value) == (f"The results folder {tmp_path / 'file' / 'results'} cannot be written: "
                            f"{tmp_path / 'file'} is a file, not a folder. Nothing was loaded or computed. Fix it.")
    atomic.check_writable(tmp_path / "new" / "results", "The results folder", "Fix it.")
    assert not (tmp_path / "new").exists()  # checked, not made
