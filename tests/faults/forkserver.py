"""The server that ``tests.faults.forked`` starts commands from: ``python -m tests.faults.forkserver``.

It imports ``tests.faults.warm`` once, says ``{"ready": true}``, then reads one JSON request a
line on stdin. A command (``argv``, ``env``, ``stdout``, ``stderr``, ``status`` paths) forks a
child that runs ``harness.cli.main(argv)``; the answer is ``{"pid": ...}``. ``{"signal": [pid,
signum]}`` signals a child that has not been reaped yet (so never another process that got its
pid); the answer says whether it was sent. When a child ends, its exit status (minus the signal's
number when a signal ended it) is written to its ``status`` file. It stops when stdin closes.
One thread: children are reaped between requests.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import traceback


def _child(command: dict) -> None:
    """Never returns: the command's exit status ends the process, as the ``harness`` script's would."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, path in ((1, command["stdout"]), (2, command["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        os.environ.update(command["env"])
        # main() sets logging up once per process; the warm-up run did it in this one already.
        logging.disable(logging.NOTSET)
        for handler in logging.root.handlers[:]:
            logging.root.removeHandler(handler)
        from harness.cli import main

        main(command["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:  # uncaught, as the interpreter ends: by the signal itself
        sys.stdout.flush(), sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)


def _reap(children: dict[int, str]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        path = children.pop(pid)
        with open(path + ".tmp", "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))
        os.replace(path + ".tmp", path)  # whole or absent: the client polls for it


def serve() -> None:
    import tests.faults.warm  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    children: dict[int, str] = {}
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.01)
        _reap(children)
        if not ready:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            if "signal" in request:
                pid, signum = request["signal"]
                if pid in children:
                    os.kill(pid, signum)
                print(json.dumps({"sent": pid in children}), flush=True)
                continue
            pid = os.fork()
            if pid == 0:
                _child(request)
            children[pid] = request["status"]
            print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    serve()
