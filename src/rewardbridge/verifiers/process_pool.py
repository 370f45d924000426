"""A process pool with a wall-clock limit per item, for CPU-heavy rule checks (``math.py``).

No ``signal.alarm``: items run in a ``ProcessPoolExecutor`` (forkserver, or spawn where there is
none) and the parent enforces the clock. Items travel in chunks (up to ``MAX_CHUNK`` per task,
fewer for small batches) to cut the per-item round trips; each worker writes which item it is
on, and since when, into a shared array, so the clock runs per item and starts when a worker
begins the item. A worker whose item overruns is killed together with its pool: that item is
``TIMEOUT``, a fresh pool is started, and every other item that was in flight (the rest of its
chunk included) runs again. A worker that dies breaks the pool: the items in flight run again
one at a time, and an item that breaks the pool twice is a ``BACKEND_ERROR``.

The pool is created on first use and reused; batches from several threads run one at a time
(each batch already uses every worker).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rewardbridge.verifiers.base import Status, VerifierResult

MAX_CHUNK = 16  # items per pool task, at most
_progress: Any = None  # in a worker: the pool's shared array, 2 slots per worker
_slot = 0  # in a worker: its slot pair in ``_progress``

Judge = Callable[[Any], VerifierResult]


def _init_worker(progress: Any, counter: Any, setup: Callable[[], None] | None) -> None:
    """Worker set-up: the caller's ``setup``, then a slot pair in the shared progress array."""
    global _progress, _slot
    if setup is not None:
        setup()
    with counter.get_lock():
        _slot, counter.value = counter.value, counter.value + 1
    _progress = progress


def _judge_chunk(
    judge: Judge, indices: Sequence[int], tasks: Sequence[Any]
) -> list[VerifierResult]:
    """Judge a chunk in a worker, publishing (item index, start time) of the item running: the
    index is cleared first and set last, so the parent never pairs it with another's time."""
    out = []
    at = 2 * _slot
    for i, task in zip(indices, tasks, strict=True):
        _progress[at] = -1.0
        _progress[at + 1] = time.monotonic()
        _progress[at] = float(i)
        out.append(judge(task))
    _progress[at] = -1.0
    return out


def _warm_up() -> int:
    return os.getpid()


def _mp_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Takes effect only if no forkserver runs yet; "__main__" is multiprocessing's default.
        ctx.set_forkserver_preload(["__main__", *preload, __name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _kill(executor: ProcessPoolExecutor) -> None:
    """Stop an executor now, running items included (ProcessPoolExecutor cannot cancel them;
    before Python 3.14 its processes are reachable only through the private ``_processes``)."""
    kill_workers = getattr(executor, "kill_workers", None)  # Python >= 3.14
    processes = list((getattr(executor, "_processes", None) or {}).values())
    if kill_workers is not None:
        kill_workers()
    else:
        for proc in processes:
            proc.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.join(timeout=5)


class TimedProcessPool:
    """``workers`` processes, ``timeout`` wall-clock seconds per item; ``setup`` runs once in
    each worker (imports), ``preload`` names modules the forkserver imports up front."""

    def __init__(
        self,
        workers: int,
        timeout: float,
        setup: Callable[[], None] | None = None,
        preload: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.timeout = timeout
        self.setup = setup
        self.preload = list(preload)
        self.executor: ProcessPoolExecutor | None = None
        self._progress: Any = None  # (item index, start time) per worker
        self._lock = threading.Lock()

    def run(self, judge: Judge, tasks: Sequence[Any], what: str = "item") -> list[VerifierResult]:
        """``judge(task)`` for every task (``judge`` a module-level function), in order."""
        with self._lock:
            results: list[VerifierResult | None] = [None] * len(tasks)
            queue = deque(range(len(tasks)))
            crashes = [0] * len(tasks)
            running: dict[Future[list[VerifierResult]], list[int]] = {}
            chunk = max(1, min(MAX_CHUNK, len(tasks) // (4 * self.workers)))
            while queue or running:
                pool_lost = self._submit(judge, tasks, queue, running, crashes, chunk)
                if not running:
                    continue
                busy = self._busy_since(running)
                first_deadline = min(busy.values(), default=time.monotonic()) + self.timeout
                done, _ = wait(
                    running,
                    timeout=max(0.0, first_deadline - time.monotonic()),
                    return_when=FIRST_COMPLETED,
                )
                for fut in done:
                    indices = running.pop(fut)
                    try:
                        for i, res in zip(indices, fut.result(), strict=True):
                            results[i] = res
                    except BrokenProcessPool:
                        pool_lost = True
                        for i in indices:
                            crashes[i] += 1
                            if crashes[i] < 2:
                                queue.appendleft(i)
                            else:
                                results[i] = VerifierResult.failed(
                                    Status.BACKEND_ERROR, f"{what} worker process died twice"
                                )
                now = time.monotonic()
                for i, since in self._busy_since(running).items():
                    if now - since >= self.timeout:
                        results[i] = VerifierResult.failed(
                            Status.TIMEOUT, f"{what} took longer than {self.timeout:g} s"
                        )
                        pool_lost = True
                if pool_lost:
                    # A stuck worker can only be stopped with its pool; the other items still
                    # in flight on it run again on a fresh one (their clocks restart).
                    for indices in running.values():
                        queue.extendleft(i for i in reversed(indices) if results[i] is None)
                    running.clear()
                    self._replace_executor()
            return [r for r in results if r is not None]

    def _busy_since(self, running: Mapping[Any, list[int]]) -> dict[int, float]:
        """Item index -> when its worker began it, for the items being judged right now."""
        in_flight = {i for indices in running.values() for i in indices}
        out = {}
        for slot in range(self.workers):
            first = self._progress[2 * slot]
            since = self._progress[2 * slot + 1]
            if first == self._progress[2 * slot] and first >= 0 and int(first) in in_flight:
                out[int(first)] = since
        return out

    def _submit(
        self,
        judge: Judge,
        tasks: Sequence[Any],
        queue: deque[int],
        running: dict[Future[list[VerifierResult]], list[int]],
        crashes: list[int],
        chunk: int,
    ) -> bool:
        """Fill the free workers with chunks from ``queue``; an item that was in a crash runs
        alone. Returns True if the pool turned out to be broken."""
        if self.executor is None:
            self.executor = self._start_executor()
        if any(crashes[i] > 0 for indices in running.values() for i in indices):
            return False  # a suspect is running alone
        while queue and len(running) < self.workers:
            solo = crashes[queue[0]] > 0
            if solo and running:
                break
            indices = [queue[0]]
            for i in list(queue)[1:chunk] if not solo else []:
                if crashes[i] > 0:
                    break
                indices.append(i)
            try:
                fut = self.executor.submit(
                    _judge_chunk, judge, indices, [tasks[i] for i in indices]
                )
            except BrokenProcessPool:
                return True
            for _ in indices:
                queue.popleft()
            running[fut] = indices
            if solo:
                break
        return False

    def _start_executor(self) -> ProcessPoolExecutor:
        context = _mp_context(self.preload)
        self._progress = context.RawArray("d", [-1.0] * (2 * self.workers))
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._progress, context.Value("i", 0), self.setup),
        )
        # Start every worker (and its imports) before any item's clock runs.
        try:
            for fut in [executor.submit(_warm_up) for _ in range(self.workers)]:
                fut.result()
        except BrokenProcessPool as exc:
            _kill(executor)
            raise RuntimeError(
                "worker processes failed to start. A script that judges with workers >= 1 must "
                "guard its entry point with `if __name__ == '__main__':` (multiprocessing "
                "re-imports it in each worker), or use workers=0"
            ) from exc
        return executor

    def _replace_executor(self) -> None:
        if self.executor is not None:
            _kill(self.executor)
            self.executor = None
        self.executor = self._start_executor()

    def close(self) -> None:
        with self._lock:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
                self.executor = None
