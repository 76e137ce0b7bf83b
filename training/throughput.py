"""`Throughput`: examples per second of each training epoch, added to the epoch's logs (so TensorBoard and the
History show `examples_per_s`). Put it before `keras.callbacks.TensorBoard` in the callback list."""

import time

import keras


class Throughput(keras.callbacks.Callback):
    """Counts the examples of every training batch and logs `examples_per_s` at the end of each epoch.

    Args:
        batch_size: int. The global batch size (the last, smaller batch of an epoch counts as a full one).
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = int(batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.batches:
            logs["examples_per_s"] = self.batches * self.batch_size / (time.perf_counter() - self.start)
