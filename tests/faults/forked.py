"""``harness`` commands in processes of their own that start warm, for tests that signal them.

Each command runs in a child forked from one server (``tests.faults.forkserver``) that has
imported the harness and its libraries and compiled ranx's numba kernels, so a run costs its own
work (a second or two on a SciFact sample) instead of ten seconds of numba start-up. The child
calls ``harness.cli.main`` as the ``harness`` script does; it is a real process, signalled like
one, and its exit status is the command's.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_server: subprocess.Popen | None = None


def _started() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        # numba's workqueue threads are made again in a forked child; an OpenMP pool may not be.
        env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue", "COLUMNS": "200"}
        _server = subprocess.Popen([sys.executable, "-m", "tests.faults.forkserver"], cwd=REPO, env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        atexit.register(_server.stdin.close)  # the server stops when its stdin closes
        if json.loads(_server.stdout.readline() or "{}").get("ready") is not True:
            raise RuntimeError("the fork server did not start; run `python -m tests.faults.forkserver` to see why")
    return _server


def _ask(request: dict) -> dict:
    server = _started()
    server.stdin.write(json.dumps(request) + "\n")
    return json.loads(server.stdout.readline())


class Harness:
    """One ``harness`` command, started at once."""

    def __init__(self, *argv: str, logs: Path, env: dict[str, str] | None = None):
        logs.mkdir(parents=True, exist_ok=True)
        n = len(list(logs.glob("*.stderr")))
        self.stdout_path, self.stderr_path, self.status_path = (logs / f"{n}.{part}" for part in
                                                                ("stdout", "stderr", "status"))
        command = {"argv": list(argv), "env": env or {}, "stdout": str(self.stdout_path),
                   "stderr": str(self.stderr_path), "status": str(self.status_path)}
        _started()  # before the clock starts: the server's own start takes seconds, once
        self.started = time.monotonic()
        self.pid = _ask(command)["pid"]

    def signal(self, signum: int = signal.SIGKILL) -> bool:
        """Send ``signum`` unless the command has ended already; True when sent."""
        return _ask({"signal": [self.pid, int(signum)]})["sent"]

    @property
    def running(self) -> bool:
        return not self.status_path.exists()

    def wait(self, timeout: float = 120) -> int:
        """The exit status; minus the signal's number when a signal ended it."""
        while self.running:
            if time.monotonic() - self.started > timeout:
                self.signal(signal.SIGKILL)
                raise AssertionError(f"harness {self.pid} did not finish in {timeout} s; stderr:\n{self.stderr}")
            time.sleep(0.01)
        return int(self.status_path.read_text())

    def wait_for(self, text: str, timeout: float = 120) -> float:
        """Poll stderr until it holds ``text``; the seconds since the start."""
        while text not in self.stderr:
            if not self.running:
                raise AssertionError(f"harness ended before printing {text!r}; stderr:\n{self.stderr}")
            if time.monotonic() - self.started > timeout:
                raise AssertionError(f"no {text!r} on stderr within {timeout} s")
            time.sleep(0.005)
        return time.monotonic() - self.started

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""


def run(*argv: str, logs: Path, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, Harness]:
    """Run a command to its end: (exit status, the command)."""
    command = Harness(*argv, logs=logs, env=env)
    return command.wait(timeout), command
