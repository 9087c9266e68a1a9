"""The harness without Ray: `--executor local` (the default) runs and never imports it, and
asking for `--executor ray` is one paragraph naming the extra that brings it (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.executors.grid_world import SAMPLE, stored, write_suite

# Ray made unimportable, as where the distributed extra is not installed, then the CLI in-process.
WITHOUT_RAY = """
import json, sys

class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoRay())
from harness.cli import main
try:
    main(sys.argv[1:])
finally:
    print(json.dumps({"ray_imported": "ray" in sys.modules}))
"""


def without_ray(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_RAY, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "COLUMNS": "200"})


def test_local_executor_runs_without_ray_and_imports_none(offline, tmp_path):
    suite = write_suite(tmp_path)
    done = without_ray("run", str(suite), "-r", "bm25", "--results", str(tmp_path / "r"), "--executor", "local", *SAMPLE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"ray_imported": False}
    assert list(stored(tmp_path / "r")) == ["bm25"]


def test_ray_executor_without_ray_names_the_extra(offline, tmp_path):
    suite = write_suite(tmp_path)
    done = without_ray("run", str(suite), "-r", "bm25", "--results", str(tmp_path / "r"), "--executor", "ray", *SAMPLE)
    assert done.returncode == 2, done.stderr
    message = [line for line in done.stderr.splitlines() if line.strip()]
    assert message == ["error: --executor ray needs Ray, which is not installed. Install the distributed extra with "
                       "`pip install 'late-interaction-harness[distributed]'`, or run without --executor ray (the "
                       "default, --executor local, needs no Ray)."]
    assert not (tmp_path / "r").exists()
