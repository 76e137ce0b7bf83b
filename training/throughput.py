"""`Throughput`: examples per second of each training epoch, added to the epoch's logs (so TensorBoard and the
History show `examples_per_s`). Put it before `keras.callbacks.TensorBoard` in the callback list."""

import time

import keras


class Throughput(keras.callbacks.Callback):
    """Counts the examples of every training batch and logs `examples_per_s` at the end of each epoch.

    Args:
        batch_size: int. The global batch size (the last, smaller batch of an epoch counts as a full one).

    With `steps_per_execution` > 1, Keras calls `on_train_batch_end` once per call, with the index of the call's
    last batch: the batches are counted from that index (at most the epoch's steps, when Keras knows them).
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = int(batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        steps = (self.params or {}).get("steps")
        self.batches = batch + 1 if not steps else min(batch + 1, steps)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.batches:
            logs["examples_per_s"] = self.batches * self.batch_size / (time.perf_counter() - self.start)
