"""The local executor: a loop in this process, in the items' order."""

from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable, Iterator

from harness.executors import Finished, Gpus


class LocalExecutor:
    name = "local"
    workers = 1

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any], gpus: Gpus = 0) -> Iterator[Finished]:
        for item in items:
            try:
                value = fn(item)
            except Exception as e:  # Ctrl-C (KeyboardInterrupt) is not caught: it stops the loop
                yield Finished(item, error=e, traceback=traceback.format_exc())
            else:
                yield Finished(item, value)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
