"""Micro-batching: requests that arrive together and can share one network call are run as one batch.

One worker thread owns the model. Callers `submit(key, item)` and get a Future; the worker takes the oldest
waiting item, gathers up to `max_batch - 1` more with the same key (already waiting, or arriving within
`wait_s`), and runs them in one call of `run(items) -> results`. Items with another key wait for the next
batch in arrival order. The queue is bounded: when it is full `submit` raises QueueFull at once, so a
server answers 503 instead of holding unbounded memory. A caller that gave up cancels its Future and the
worker skips the item.
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Hashable


class QueueFull(Exception):
    """The batcher holds `queue_size` items already."""


class MicroBatcher:
    def __init__(self, run: Callable[[list], list], max_batch: int = 8, wait_s: float = 0.005,
                 queue_size: int = 64, on_batch: Callable[[int], None] | None = None):
        if max_batch < 1 or queue_size < 1 or wait_s < 0:
            raise ValueError("max_batch and queue_size must be at least 1, wait_s at least 0")
        self.run, self.max_batch, self.wait_s, self.queue_size = run, max_batch, wait_s, queue_size
        self.on_batch = on_batch
        self._waiting: collections.deque[tuple[Hashable, Any, Future]] = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="colorgan-model", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._waiting)

    def submit(self, key: Hashable, item) -> Future:
        future: Future = Future()
        with self._cond:
            if self._stopped:
                raise RuntimeError("the batcher is stopped")
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(f"{len(self._waiting)} requests are waiting")
            self._waiting.append((key, item, future))
            self._cond.notify()
        return future

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join()

    def _take_batch(self) -> list[tuple[Any, Future]]:
        """Block until something waits; then the oldest item and up to max_batch - 1 more with its key."""
        with self._cond:
            while not self._waiting and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return []
            key, item, future = self._waiting.popleft()
            batch = [(item, future)]
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                others: collections.deque = collections.deque()
                for entry in self._waiting:
                    if entry[0] == key and len(batch) < self.max_batch:
                        batch.append(entry[1:])
                    else:
                        others.append(entry)
                self._waiting = others
                left = deadline - time.monotonic()
                if len(batch) >= self.max_batch or left <= 0 or self._stopped:
                    break
                self._cond.wait(left)  # woken by each new arrival
            return batch

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            batch = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
            if not batch:
                continue
            if self.on_batch:
                self.on_batch(len(batch))
            try:
                results = self.run([item for item, _ in batch])
            except BaseException as e:  # the callers get the error; the worker keeps serving
                for _, future in batch:
                    future.set_exception(e)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
