"""Server-side batching of concurrent predict requests (TF-Serving's `--enable_batching` idea).

Requests for the same signature of the same version whose inputs agree beyond the batch axis wait in a queue. The
queue runs as one call when it holds `max_batch_size` examples, or once `timeout_ms` have passed since its first
request arrived and one of the call threads is free, whichever comes first: while every thread is busy, a queue
whose time is up goes on filling (it could not run sooner), which keeps batches large under load without adding
latency. The outputs are split back by request. A request of `max_batch_size` examples or more runs alone. Calls
run in a thread pool, off the event loop (one thread with batching, two without); with batching off every request is
its own call there.
"""

import asyncio
import concurrent.futures
import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """enabled: bool. timeout_ms: float, the longest a request waits for others while a call thread is free.
    max_batch_size: int."""

    enabled: bool = True
    timeout_ms: float = 2.0
    max_batch_size: int = 32


class Batcher:
    """Runs `function(**inputs) -> {name: array}` calls, batching concurrent ones (see the module docstring)."""

    def __init__(self, options=BatchingOptions(), threads=None):
        """threads: how many calls run at once; default 1 with batching (TensorFlow runs a call's independent ops side
        by side on the cores, and the queues fill while it runs; 2 were slower for `mmlatch`, README), 2 without
        (measured faster for concurrent single requests)."""
        self.options = options
        self.threads = threads or (1 if options.enabled else 2)
        self.pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="predict")
        self.busy = 0  # calls running in the pool (changed on the event loop only)
        self.queues = {}  # key -> [(inputs, size, future)]
        self.timers = {}
        self.due = {}  # key -> function, for queues whose time is up, waiting for a free thread

    async def run(self, key, function, inputs):
        """The outputs of `function` on `inputs` {name: array}; `key` names the signature (version, name)."""
        size = len(next(iter(inputs.values())))
        if not self.options.enabled or size >= self.options.max_batch_size:
            return await self._execute(function, inputs)
        key = (key, tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items())))
        future = asyncio.get_running_loop().create_future()
        queue = self.queues.setdefault(key, [])
        queue.append((inputs, size, future))
        if sum(s for _, s, _ in queue) >= self.options.max_batch_size:
            self._flush(key, function)
        elif len(queue) == 1 and key not in self.due:
            self.timers[key] = asyncio.get_running_loop().call_later(
                self.options.timeout_ms / 1000, self._time_up, key, function)
        return await future

    async def _execute(self, function, inputs):
        """`function` on `inputs` in the pool; a freed thread takes the queues that are due."""
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, _call, function, inputs)
        finally:
            self.busy -= 1
            for key, waiting in list(self.due.items())[: self.threads - self.busy]:
                self._flush(key, waiting)

    def _time_up(self, key, function):
        self.timers.pop(key, None)
        if self.busy >= self.threads:
            self.due[key] = function
        else:
            self._flush(key, function)

    def _flush(self, key, function):
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self.due.pop(key, None)
        queue = self.queues.pop(key, [])
        if not queue:
            return
        taken, total = [], 0
        while queue and total + queue[0][1] <= self.options.max_batch_size:
            taken.append(queue.pop(0))
            total += taken[-1][1]
        if queue:  # what did not fit waits for the next call
            self.queues[key] = queue
            self.timers[key] = asyncio.get_running_loop().call_later(0, self._time_up, key, function)
        asyncio.ensure_future(self._run_batch(function, taken))

    async def _run_batch(self, function, taken):
        inputs = {name: np.concatenate([t[0][name] for t in taken]) for name in taken[0][0]}
        try:
            outputs = await self._execute(function, inputs)
        except Exception as error:
            if len(taken) == 1:
                if not taken[0][2].done():
                    taken[0][2].set_exception(error)
                return
            for request in taken:  # one bad request (e.g. NaN values) fails alone, not its batch
                await self._run_batch(function, [request])
            return
        start = 0
        for _, size, future in taken:
            if not future.done():  # a client that went away leaves a cancelled future
                future.set_result({k: v[start:start + size] for k, v in outputs.items()})
            start += size

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


def _call(function, inputs):
    return {k: v.numpy() for k, v in function(**{name: tf.constant(v) for name, v in inputs.items()}).items()}
