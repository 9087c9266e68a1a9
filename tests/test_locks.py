"""File locks: one holder at a time across threads and processes, nothing left once released."""

import subprocess
import sys
import threading
import time

import numpy as np

from harness import locks
from harness.index import cache
from harness.index.token_store import TokenStore


def test_a_lock_leaves_no_file_and_no_folder_it_made(tmp_path):
    target = tmp_path / "results" / "beir" / "scifact" / "bm25-abc"
    with locks.hold(target):
        assert locks.lock_path(target) == tmp_path / "results" / "beir" / "scifact" / ".lock-bm25-abc"
        assert locks.lock_path(target).is_file()
        with locks.hold(target):  # re-entrant in one thread
            pass
        assert locks.lock_path(target).is_file()
    assert list(tmp_path.iterdir()) == []


def test_a_second_thread_waits_for_the_holder(tmp_path):
    order = []

    def wait_then_hold():
        with locks.hold(tmp_path / "x"):
            order.append("second holds")

    with locks.hold(tmp_path / "x"):
        waiter = threading.Thread(target=wait_then_hold)
        waiter.start()
        time.sleep(0.3)
        order.append("first releases")
    waiter.join(5)
    assert order == ["first releases", "second holds"]
    assert list(tmp_path.iterdir()) == []


def test_try_hold_is_false_while_another_holds_and_true_once_its_process_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from harness import locks\n"
                               f"with locks.hold({str(tmp_path / 'x')!r}):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with locks.try_hold(tmp_path / "x") as free:
        assert free is False
    holder.kill()
    holder.wait()
    assert locks.lock_path(tmp_path / "x").exists()  # a killed holder cannot remove its file...
    with locks.try_hold(tmp_path / "x") as free:
        assert free is True  # ...but the kernel released its lock
    assert not locks.lock_path(tmp_path / "x").exists()


def test_try_hold_is_false_in_the_thread_that_holds(tmp_path):
    with locks.hold(tmp_path / "x"):
        with locks.try_hold(tmp_path / "x") as free:
            assert free is False


def test_two_threads_wanting_one_store_build_it_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    builds = []

    def build(make_writer):
        builds.append(threading.get_ident())
        time.sleep(0.2)  # the other thread arrives while this one builds
        writer = make_writer(np.array([2]), 4)
        writer.write(0, np.ones((2, 4), dtype=np.float32))
        return writer.finish()

    found = []
    threads = [threading.Thread(target=lambda: found.append(cache.open_or_build({"k": 1}, build))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(builds) == 1
    assert sorted(hit for _, hit in found) == [False, True]
    assert all(isinstance(store, TokenStore) and store.n_docs == 1 for store, _ in found)
    assert not any(p.name.startswith((".lock-", ".tmp-")) for p in tmp_path.rglob("*"))
