"""Speed of the zoo's C-LSTM (`clstm_av`, fusion "initial") against its plain and stock formulations.

Prints one JSON object, everything measured in this run, same batch, same machine:
- `max_abs_diff_vs_reference`, `zoo_examples_per_s`, `reference_examples_per_s`: the zoo's first C-LSTM layer
  (`ConvLSTMFusion`) against `per_step_reference`, the same mathematics computed per step (a convolution of
  [image, h_{t-1}] and a dense map of the audio frame at every step), forward passes;
- `zoo_train_examples_per_s`, `stock_examples_per_s`, `speedup_vs_stock`: training steps of the zoo model against
  the stock formulation, `keras.layers.ConvLSTM2D` over the image with the audio frame tiled over it as extra
  channels, same filters and depth (the nearest stock formulation, not the same network: see `StockCLSTM`); the
  models take turns step by step and each keeps its best step time, so a
  change in the machine's speed during the run reaches all of them;
- `achieved_gflops` of a zoo training step (direct-convolution FLOPs counted: 2 k^2 C_in C_out H W per
  convolution, a training step taken as 3x the forward pass: forward, input and weight gradients) against
  `peak_gflops`, this machine's fp32 matmul rate measured on 2048 x 2048 matrices;
- `zoo_train_examples_per_s_xla`: the zoo training step with `jit_compile=True`, kept for the comparison; the zoo
  uses what is faster here (`jit_compile_chosen`);
- `peak_rss_mb`.

Usage: python benchmarks/clstm.py [--batch-size 8] [--frames 15] [--steps 10]
(15 frames is the median FSDD recording; the paper pads to 90, which scales every number here by about 6.)
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from multisensory import datasets, zoo  # noqa: E402
from multisensory.zoo.clstm import ConvLSTMFusion, per_step_reference  # noqa: E402

H = W = 28
BINS = 201


class StockCLSTM(keras.Model):
    """The nearest stock formulation: ConvLSTM2D over [image, audio frame tiled over the image].

    Not the same network: under the 3x3 kernel with zero padding, the tiled audio channels are cut at the image's
    border, so the audio term of a border pixel sees fewer of them, while the zoo's C-LSTM adds W_v v to every
    pixel alike. Its cost per step (the 201 tiled channels convolved at every step) is what the speed-up is
    measured against.
    """

    def __init__(self, frames, filters, hidden, classes):
        super().__init__()
        self.frames = frames
        self.clstm1 = keras.layers.ConvLSTM2D(filters, 3, padding="same", return_sequences=True)
        self.clstm2 = keras.layers.ConvLSTM2D(filters, 3, padding="same")
        self.pool = keras.layers.MaxPooling2D(2)
        self.pool_steps = keras.layers.TimeDistributed(keras.layers.MaxPooling2D(2))
        self.dense = keras.layers.Dense(hidden, activation="relu")
        self.out = keras.layers.Dense(classes)

    def call(self, inputs):
        image, audio = inputs["image"], inputs["audio"][:, -self.frames:]
        batch = tf.shape(image)[0]
        tiled_image = tf.repeat(image[:, None], self.frames, axis=1)
        tiled_audio = tf.broadcast_to(audio[:, :, None, None, :], [batch, self.frames, H, W, BINS])
        x = self.clstm2(self.pool_steps(self.clstm1(tf.concat([tiled_image, tiled_audio], axis=-1))))
        return self.out(self.dense(keras.layers.Flatten()(self.pool(x))))


def best_times(fns, rounds):
    """Best time of each of `fns` over `rounds` rounds that call them in turn, so drifts in the machine's speed
    reach every function alike."""
    for fn in fns:
        fn()  # warm-up: tracing and first allocation
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, fn_times in zip(fns, times):
            start = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - start)
    return [min(fn_times) for fn_times in times]


def peak_gflops():
    a = tf.random.normal((2048, 2048))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    return 2 * 2048 ** 3 / best_times([lambda: matmul().numpy()], 20)[0] / 1e9


def forward_flops(frames, filters, classes, hidden):
    """Direct-convolution (and dense) FLOPs of one example's forward pass through the zoo model."""
    gates = 4 * filters

    def conv(h, w, c_in, c_out):
        return 2 * 9 * c_in * c_out * h * w

    # h_0 = 0: the first step has no recurrent convolution.
    layer1 = conv(H, W, 1, gates) + frames * 2 * BINS * gates + (frames - 1) * conv(H, W, filters, gates)
    layer2 = (2 * frames - 1) * conv(H // 2, W // 2, filters, gates)  # input and recurrent convolutions
    head = 2 * (H // 4) * (W // 4) * filters * hidden + 2 * hidden * classes
    return layer1 + layer2 + head


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    b, t, f = args.batch_size, args.frames, args.filters
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 1, (b, H, W, 1)).astype("float32"),
         "audio": rng.uniform(0, 2, (b, 90, BINS)).astype("float32")}
    y = rng.integers(0, 10, b).astype("int32")

    layer = ConvLSTMFusion(f, return_sequences=True)
    image, audio = tf.constant(x["image"]), tf.constant(x["audio"][:, -t:])
    zoo_layer = tf.function(lambda: layer(image, audio))
    reference = tf.function(lambda: per_step_reference(layer, image, audio))
    diff = float(tf.reduce_max(tf.abs(zoo_layer() - reference())))
    zoo_forward, reference_forward = (b / seconds for seconds in best_times(
        [lambda: zoo_layer().numpy(), lambda: reference().numpy()], args.steps))

    info = datasets.info("av_mnist")
    models = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        models.append(zoo.create("clstm_av", info, fusion="initial", filters=f, max_frames=t))
        models[-1].compile(jit_compile=jit)
    stock = StockCLSTM(t, f, 128, 10)
    stock.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    zoo_time, xla_time, stock_time = best_times([lambda: models[0].train_on_batch(x, y),
                                                 lambda: models[1].train_on_batch(x, y),
                                                 lambda: stock.train_on_batch(x, y)], args.steps)
    results = {False: b / zoo_time, True: b / xla_time}
    stock_rate = b / stock_time
    chosen = results[True] > results[False]
    zoo_rate = results[chosen]
    achieved = 3 * forward_flops(t, f, 10, 128) * zoo_rate / 1e9
    peak = peak_gflops()
    print(json.dumps({
        "benchmark": "clstm", "batch_size": b, "frames": t, "filters": f, "cpu_count": os.cpu_count(),
        "max_abs_diff_vs_reference": diff,
        "zoo_examples_per_s": round(zoo_forward, 2), "reference_examples_per_s": round(reference_forward, 2),
        "zoo_train_examples_per_s": round(zoo_rate, 2),
        "zoo_train_examples_per_s_xla": round(results[True], 2),
        "zoo_train_examples_per_s_no_xla": round(results[False], 2),
        "jit_compile_chosen": chosen,
        "stock_examples_per_s": round(stock_rate, 2), "speedup_vs_stock": round(zoo_rate / stock_rate, 2),
        "train_gflop_per_example": round(3 * forward_flops(t, f, 10, 128) / 1e9, 2),
        "achieved_gflops": round(achieved, 1), "peak_gflops": round(peak, 1),
        "fraction_of_peak": round(achieved / peak, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
