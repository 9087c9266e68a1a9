"""The Ray executor: the only module that imports Ray.

``RayExecutor`` starts a local Ray on this machine (one CPU slot per worker), or joins a running
cluster at ``address``, and maps step functions over items as Ray tasks. Ray does the scheduling;
this module only keeps at most ``workers`` tasks in flight and turns their ends into ``Finished``.

Retries are for system failures only: a task whose worker dies (killed, out of memory, a lost
node) is run again elsewhere, up to ``RETRIES`` times. An exception the step raises is not retried:
it is caught on the worker and comes back as the item's error, like the local executor's.
"""

from __future__ import annotations

import logging
import os
import pickle
import traceback
from typing import Any, Callable, Iterable, Iterator

from harness.environment import reset_high_water_mark
from harness.errors import HarnessError, MissingDependencyError
from harness.executors import THREADS_ENV, Finished, Gpus, threads_per_worker

try:
    import ray
except ImportError:
    raise MissingDependencyError(
        "--executor ray needs Ray, which is not installed. Install the distributed extra with "
        "`pip install 'late-interaction-harness[distributed]'`, or run without --executor ray (the default, "
        "--executor local, needs no Ray).") from None

RETRIES = 3  # runs of a task beyond the first after its worker died
# The harness's and its libraries' cache locations: a joined cluster's workers get the driver's.
FORWARDED_ENV = ("HARNESS_HOME", "HARNESS_VERBOSE", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "IR_DATASETS_HOME")


@ray.remote(max_retries=RETRIES, retry_exceptions=False)
def harness_step(fn: Callable[[Any], Any], item: Any) -> tuple[bool, Any, str]:
    """``fn(item)`` on a worker: (True, value, "") or (False, the exception, its traceback)."""
    _share_cores()
    reset_high_water_mark()  # the peak memory a step reports is its own, not an earlier task's
    try:
        return True, fn(item), ""
    except Exception as e:
        return False, _portable(e), traceback.format_exc()


def _share_cores() -> None:
    """Torch threads = this node's cores / the tasks it runs at once (its CPU slots); the Rust
    tokenizer's the same, since by default each worker's would start a thread per core and take
    cores from the other workers' forward passes."""
    node = ray.get_runtime_context().get_node_id()
    slots = next((n["Resources"].get("CPU", 1) for n in ray.nodes() if n["NodeID"] == node), 1)
    threads = threads_per_worker(os.cpu_count(), int(slots))
    os.environ[THREADS_ENV] = str(threads)
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # read when the tokenizer first starts its threads
    if threads == 1:  # read at every call: a tokenizer already started runs on this thread only
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch = __import__("sys").modules.get("torch")
    if torch is not None:  # a worker reused from an earlier task already has torch loaded
        torch.set_num_threads(threads)


def _portable(error: Exception) -> Exception:
    """The exception itself when it survives pickling, else one of its kind's base with its message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        if isinstance(error, HarnessError):
            return HarnessError(str(error))
        return RuntimeError(f"{type(error).__name__}: {error}")


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None):
        self.address = address
        self._owned = not ray.is_initialized()  # an embedding program's Ray is left running
        if self._owned:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                           runtime_env={"env_vars": env} if env else None)
            try:
                if address is None:
                    ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
                else:
                    ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise HarnessError(
                    f"--ray-address {address}: could not join a Ray cluster there ({str(e).splitlines()[0]}). Start one "
                    "with `ray start --head` on its head node and give the address it prints (HOST:PORT), or drop "
                    "--ray-address to start a local Ray on this machine.") from None
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], gpus: Gpus = 0) -> Iterator[Finished]:
        has_gpus = bool(ray.cluster_resources().get("GPU"))  # without: asking for one would wait forever
        queue = iter(items)
        self._pending: dict = {}

        def submit() -> None:
            for item in queue:
                need = (gpus(item) if callable(gpus) else gpus) if has_gpus else 0
                task = harness_step.options(num_gpus=need) if need else harness_step
                self._pending[task.remote(fn, item)] = item
                return

        for _ in range(self.workers):
            submit()
        while self._pending:
            (ref,), _ = ray.wait(list(self._pending), num_returns=1)
            item = self._pending.pop(ref)
            submit()
            try:
                ok, value, text = ray.get(ref)
            except ray.exceptions.RayError as e:  # its workers died more often than it is retried
                yield Finished(item, error=HarnessError(
                    f"{item}: its worker died {RETRIES + 1} times ({type(e).__name__}), so it was given up. "
                    "A worker that runs out of memory is killed: give each fewer units at once (--workers), "
                    "or look at the Ray logs of the node (/tmp/ray/session_latest/logs)."), traceback=str(e))
                continue
            yield Finished(item, value) if ok else Finished(item, error=value, traceback=text)

    def close(self) -> None:
        for ref in getattr(self, "_pending", {}):
            ray.cancel(ref)  # a KeyboardInterrupt in the task: its temporary files are removed
        self._pending = {}
        if self._owned and ray.is_initialized():
            ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
