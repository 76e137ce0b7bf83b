"""Is the `av_mnist` input pipeline fast enough to keep training busy? Prints one JSON object.

Measured in one run, same machine:
- `pipeline_examples_per_s`: `datasets.load("av_mnist", "train", noise=...)` (batched gather, batch-level noise,
  the audio noise on the padded recordings' own samples, then the spectrograms of the batch).
- `naive_pipeline_examples_per_s`: the same data and noise done per example (fetch one example, draw fresh
  Gaussian noise for it from a per-example seed, take its spectrogram, then batch), the formulation the zoo's
  pipeline avoids (see `multisensory.datasets.noise`); `speedup_vs_naive` is the ratio.
- `training_examples_per_s`: `model.fit` of `additive_fusion` on batches already in memory, so the input
  pipeline is not in the way; `pipeline_over_training` must be at least 5.
- `peak_rss_mb`: peak resident memory of the process.

Usage: MULTISENSORY_DATA=../shared/data python benchmarks/input_pipeline.py [--batch-size 64] [--batches 200]
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from multisensory import datasets, zoo  # noqa: E402
from multisensory.datasets import av_mnist, white_noise  # noqa: E402

NOISE = {"image": 0.25, "audio": 0.5}


def examples_per_s(dataset, batches):
    iterator = iter(dataset)
    next(iterator)  # warm-up: tracing, first reads
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += int(next(iterator)[1].shape[0])
    return n / (time.perf_counter() - start)


def naive_pipeline(data_dir, batch_size, seed=0):
    """Per example: the image with fresh noise; the recording with fresh noise on its own samples, then its STFT."""
    source = av_mnist.load_split("train", data_dir, seed=seed)
    _, _, waveforms, lengths = av_mnist._source_tensors(os.path.abspath(data_dir))
    table = av_mnist.pairs("train", data_dir, seed=seed)
    audio_index = tf.constant(table["audio_index"])
    samples = waveforms.shape[1]

    def one(index):
        features, label = source.fetch(tf.reshape(index, [1]))
        seed_of = lambda k: tf.stack([tf.cast(index, tf.int64), k])  # noqa: E731
        image = white_noise(features["image"], NOISE["image"], seed_of(0))[0]
        recording = tf.gather(audio_index, index)
        support = tf.cast(tf.range(samples) >= samples - tf.gather(lengths, recording), tf.float32)
        wave = tf.gather(waveforms, recording)
        sigma = tf.sqrt(tf.reduce_sum(wave ** 2) / tf.reduce_sum(support) / NOISE["audio"])
        wave = wave + sigma * tf.random.stateless_normal([samples], seed_of(1)) * support
        return {"image": image, "audio": av_mnist.spectrogram_tensor(wave[None])[0]}, label[0]

    return (tf.data.Dataset.range(source.size).shuffle(source.size, seed=seed).repeat()
            .map(one, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE))


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def training_examples_per_s(data_dir, batch_size, steps):
    batches = datasets.load("av_mnist", "train", data_dir=data_dir, batch_size=batch_size, noise=NOISE)
    cached = batches.take(steps).cache().repeat()
    for _ in cached.take(steps):  # fill the cache before timing
        pass
    model = zoo.create("additive_fusion", datasets.info("av_mnist"))
    model.compile()
    timer = _EpochTimer()
    model.fit(cached, steps_per_epoch=steps, epochs=2, verbose=0, callbacks=[timer])  # epoch 1 traces
    return steps * batch_size / timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get(datasets.DATA_ENV))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=40)
    args = parser.parse_args()

    pipeline = examples_per_s(datasets.load("av_mnist", "train", data_dir=args.data_dir, batch_size=args.batch_size,
                                            noise=NOISE).repeat(), args.batches)
    naive = examples_per_s(naive_pipeline(args.data_dir, args.batch_size), args.batches)
    training = training_examples_per_s(args.data_dir, args.batch_size, args.train_steps)
    print(json.dumps({
        "benchmark": "input_pipeline", "dataset": "av_mnist", "noise": NOISE, "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "pipeline_examples_per_s": round(pipeline, 1),
        "naive_pipeline_examples_per_s": round(naive, 1),
        "speedup_vs_naive": round(pipeline / naive, 2),
        "training_model": "additive_fusion",
        "training_examples_per_s": round(training, 1),
        "training_step_ms": round(1000 * args.batch_size / training, 2),
        "pipeline_over_training": round(pipeline / training, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
