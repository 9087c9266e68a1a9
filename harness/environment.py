"""Where a result was measured: package versions, the harness's git revision and scoring version,
hardware, threads. Library versions are kept here and not in the protocol card: upgrading one
does not make stored results incomparable (harness/protocol.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from harness import protocol

PACKAGES = ["late-interaction-harness", "torch", "transformers", "ir_datasets", "ranx", "bm25s", "PyStemmer",
            "numpy", "pandas", "pyarrow", "pydantic"]


def versions(*names: str) -> dict[str, str | None]:
    """Installed versions (None: not installed), read from package metadata without importing."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def package_versions() -> dict[str, str | None]:
    return versions(*PACKAGES)


def git_revision(path: Path | None = None) -> str | None:
    """HEAD of the harness's own checkout, with ``+dirty`` when it has uncommitted changes."""
    cwd = path or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "machine": platform.machine(),
        "system": platform.system(),
        "gpu": None,
    }
    torch = sys.modules.get("torch")  # only when a retriever already loaded it: importing costs seconds
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


class PeakMemory:
    """The peak resident memory of one unit of work.

    On Linux the kernel's high-water mark (``VmHWM``) is reset to the current resident size when
    the measurement starts (writing ``5`` to ``/proc/self/clear_refs``), so ``scope`` is ``unit``:
    the peak while this unit ran, counting what the process already held, not an earlier unit's
    peak. Where that reset is not possible, ``scope`` is ``process`` and the figure is the
    process's peak since it started (``ru_maxrss``), earlier units included."""

    def __init__(self):
        self.scope = "unit" if reset_high_water_mark() else "process"

    def bytes(self) -> int | None:
        if self.scope == "unit":
            return high_water_mark()
        try:
            import resource
        except ImportError:  # not on Windows
            return None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if platform.system() == "Darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def high_water_mark() -> int | None:
    """This process's peak resident memory (VmHWM) since it started or was last reset; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed
        return False
    return high_water_mark() is not None


def capture() -> dict:
    threads = None
    torch = sys.modules.get("torch")
    if torch is not None:
        threads = torch.get_num_threads()
    return {
        "python": platform.python_version(),
        "packages": package_versions(),
        "git_revision": git_revision(),
        "scoring_version": protocol.SCORING_VERSION,
        "hardware": hardware(),
        "torch_threads": threads,
    }
