"""Speed of the zoo's recurrent models against the same models built from stock Keras layers. Prints one JSON object.

Every model runs at the MOSEI shapes (text/audio/vision 300/74/35 features, 50 word-aligned steps, a third of the
rows front-padded by 10 steps) and is compared, in this run, with its twin built under
`zoo.recurrent.stock_formulation()` (`keras.layers.LSTM` / `Bidirectional`, MFN's per-step cells: the formulation
the zoo had before `FastLSTM`), holding the same weights. Per model, under `"models"`:
- `max_abs_diff_vs_stock`, `max_abs_grad_diff_vs_stock`: predictions and the gradients of every weight (of the
  predictions' sum over the batch); `largest_abs_grad`: the scale of the gradients compared;
- `train_speedup_vs_stock`: training steps at batch `--batch-size` as `fit` takes them (the model's train function
  on the next batch of a `tf.data` iterator), timed in samples of `STEPS_PER_SAMPLE` steps taken in turns, medians;
  `train_on_batch_speedup_vs_stock`: the same through `train_on_batch` (one step a sample), which also resets the
  metrics and converts the logs to Python numbers on every call;
- `b1_speedup_vs_stock`: `predict_on_batch` of one example; `serving_b1_speedup_vs_stock`: the exported
  SavedModel's `serving_default` at batch 1 (the portable export, no XLA); `serving_xla_b1_speedup_vs_stock`: the
  export with `xla=True`; each model's calls timed in blocks of `B1_CALLS` after `B1_WARMUP` untimed ones, the
  blocks in turns (`medians_in_turns` says why); `b1_speedup_vs_stock_interleaved`: `predict_on_batch` timed one
  call a turn;
- `metric_overhead_fraction`: 1 - (step time without metrics) / (step time with the task's metrics: CMU-MOSEI's,
  `datasets.sentiment.SENTIMENT_METRICS`), steps as `fit` takes them; `train_on_batch_metric_overhead_fraction`:
  the same through `train_on_batch`;
- `steps_per_execution_speedup`, `steps_per_execution_metric_overhead_fraction`: the zoo model compiled with
  `steps_per_execution=STEPS_PER_EXECUTION` (that many batches per call of the train function, Keras' way to
  spread its cost of a call over several steps) against one batch per call, and its metric overhead then (these
  two take their turns with the three above);
- `first_step_s`, `peak_rss_mb`, `model_rss_mb` (and the stock twin's): measured in a fresh process per
  formulation that builds the model, takes its first training step (`train_on_batch` after `compile()`, tracing
  and compilation included), 5 more and a prediction: the first step's time, the process's peak RSS, and that peak
  above the RSS after the imports.
Ratios are stock time / zoo time (> 1: the zoo is faster).

Usage: python benchmarks/recurrent.py [--models mmlatch,mmlatch_no_feedback,mult,mfn,ef_lstm] [--batch-size 32]
       [--repeats 15]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from multisensory import exports, zoo  # noqa: E402
from multisensory.datasets import DatasetInfo, Modality, Task  # noqa: E402
from multisensory.datasets.sentiment import SENTIMENT_METRICS  # noqa: E402
from multisensory.zoo import recurrent  # noqa: E402

STEPS = 50
FEATURES = {"text": 300, "audio": 74, "vision": 35}
INFO = DatasetInfo("mosei_shapes", [Modality(m, (STEPS, d), kind="sequence") for m, d in FEATURES.items()],
                   Task("regression", value_range=(-3, 3), metrics=SENTIMENT_METRICS), {})
MODELS = {"mmlatch": ("mmlatch", {"units": 100}), "mmlatch_no_feedback": ("mmlatch", {"units": 100, "feedback": None}),
          "mult": ("mult", {}), "mfn": ("mfn", {}), "ef_lstm": ("ef_lstm", {})}
STEPS_PER_SAMPLE = 5  # training steps per timed sample: a 10-20 ms step alone is within this machine's noise
STEPS_PER_EXECUTION = 8
B1_WARMUP, B1_CALLS = 5, 5  # batch-1 calls per turn: untimed, then timed (`medians_in_turns`)


def batch(size, seed=0):
    rng = np.random.default_rng(seed)
    x = {m: rng.standard_normal((size, STEPS, d)).astype("float32") for m, d in FEATURES.items()}
    for v in x.values():
        v[: size // 3, :10] = 0.0
    return x, rng.uniform(-3, 3, size).astype("float32")


def build(key, stock, metrics="auto", steps_per_execution=1):
    name, config = MODELS[key]
    if stock:
        with recurrent.stock_formulation():
            model = zoo.create(name, INFO, **config)
        model.jit_predict = False
    else:
        model = zoo.create(name, INFO, **config)
    model.compile(metrics=metrics, steps_per_execution=steps_per_execution)
    return model


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def times_in_turns(functions, repeats, warmup=0, calls=1):
    """Each function's times (s), the functions called in turns so that a drift in speed reaches all: in each
    of `repeats` rounds, each function is called `warmup` times untimed, then `calls` times timed.

    A call of a millisecond or two right after other work is slower than the same call repeated (on this machine
    `mfn`'s and `ef_lstm`'s zoo `predict_on_batch` at batch 1 took 1.5-2.9 ms right after their stock twins' calls
    and 1.0-1.7 ms by the sixth call of their own; the twins' calls after theirs, 2.6-7.3 ms, showed no such lag);
    training steps of 10 ms and more did not show it (docs/performance.md). Batch-1 calls are therefore timed in
    blocks after a warm-up (`B1_WARMUP`, `B1_CALLS`), and also one call a turn (`..._interleaved`)."""
    for f in functions:
        f()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for f, t in zip(functions, times):
            for _ in range(warmup):
                f()
            t.extend(timed(f) for _ in range(calls))
    return times


def medians_in_turns(functions, repeats, warmup=0, calls=1):
    """Each function's median time (s) in `times_in_turns`."""
    return [statistics.median(t) for t in times_in_turns(functions, repeats, warmup, calls)]


def fit_steps(model, x, y, steps):
    """A function taking `steps` training steps as `fit` does: the model's train function on the next batches of a
    `tf.data` iterator (without `train_on_batch`'s metric reset and conversion of the logs on every call); `steps`
    a multiple of the model's `steps_per_execution`."""
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    model.make_train_function()
    calls = range(steps // model.steps_per_execution)
    return lambda: [model.train_function(iterator) for _ in calls]


def gradients(model, x):
    x = {k: tf.constant(v) for k, v in x.items()}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(x, training=False))
    return [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


def serving_function(model, folder, xla=False):
    path = exports.export_saved_model(model, folder, model_name="m", xla=xla)
    return tf.saved_model.load(path).signatures["serving_default"]


def fresh_process(key, stock, batch_size):
    """`measure_fresh` of this model in a new process: {first_step_s, peak_rss_mb, model_rss_mb}."""
    out = subprocess.run([sys.executable, __file__, "--fresh", key, "--batch-size", str(batch_size)]
                         + (["--stock"] if stock else []), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def status_mb(field):
    """A memory figure of this process from /proc (VmRSS: now; VmHWM: its peak, which, unlike `ru_maxrss`, does
    not start from the parent's peak)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def measure_fresh(key, stock, batch_size):
    """Prints the first training step's time, tracing included, and the memory of building, 5 training steps and a
    prediction (peak, and peak above the RSS after the imports)."""
    imported = status_mb("VmRSS")
    model = build(key, stock)
    x, y = batch(batch_size)
    first = timed(lambda: model.train_on_batch(x, y))
    for _ in range(5):
        model.train_on_batch(x, y)
    model.predict_on_batch(batch(1)[0])
    peak = status_mb("VmHWM")
    print(json.dumps({"first_step_s": round(first, 2), "peak_rss_mb": round(peak, 1),
                      "model_rss_mb": round(peak - imported, 1)}))


def measure(key, batch_size, repeats):
    x, y = batch(batch_size)
    one = batch(1, seed=1)[0]
    model, stock = build(key, False), build(key, True)
    model.train_on_batch(x, y), stock.train_on_batch(x, y)
    stock.set_weights(model.get_weights())
    diff = float(np.max(np.abs(model.predict_on_batch(x) - stock.predict_on_batch(x))))
    pairs = list(zip(gradients(model, x), gradients(stock, x)))
    grad_diff = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    largest_grad = max(float(np.max(np.abs(b))) for _, b in pairs)
    bare = build(key, False, metrics=[])
    many, many_bare = (build(key, False, metrics=m, steps_per_execution=STEPS_PER_EXECUTION) for m in ("auto", []))
    for m in (bare, many, many_bare):
        m.set_weights(model.get_weights())
    trained = (model, stock, bare, many, many_bare)
    steps = [STEPS_PER_SAMPLE] * 3 + [STEPS_PER_EXECUTION] * 2
    train, stock_train, bare_train, many_train, many_bare_train = (t / n for t, n in zip(medians_in_turns(
        [fit_steps(m, x, y, n) for m, n in zip(trained, steps)], repeats), steps))
    on_batch, stock_on_batch, bare_on_batch = medians_in_turns(
        [lambda m=m: m.train_on_batch(x, y) for m in (model, stock, bare)], repeats)
    predict = [lambda: model.predict_on_batch(one), lambda: stock.predict_on_batch(one)]
    b1, stock_b1 = medians_in_turns(predict, repeats, B1_WARMUP, B1_CALLS)
    b1_interleaved, stock_b1_interleaved = medians_in_turns(predict, 3 * repeats)
    with tempfile.TemporaryDirectory() as folder:
        served = serving_function(model, os.path.join(folder, "zoo"))
        served_xla = serving_function(model, os.path.join(folder, "zoo_xla"), xla=True)
        served_stock = serving_function(stock, os.path.join(folder, "stock"))
        request = {k: tf.constant(v) for k, v in one.items()}
        serve, serve_xla, stock_serve = medians_in_turns(
            [lambda: served(**request), lambda: served_xla(**request), lambda: served_stock(**request)], repeats,
            B1_WARMUP, B1_CALLS)
    fresh, stock_fresh = fresh_process(key, False, batch_size), fresh_process(key, True, batch_size)
    return {
        "max_abs_diff_vs_stock": diff, "max_abs_grad_diff_vs_stock": grad_diff,
        "largest_abs_grad": largest_grad,
        "train_speedup_vs_stock": round(stock_train / train, 3),
        "b1_speedup_vs_stock": round(stock_b1 / b1, 3),
        "b1_speedup_vs_stock_interleaved": round(stock_b1_interleaved / b1_interleaved, 3),
        "serving_b1_speedup_vs_stock": round(stock_serve / serve, 3),
        "serving_xla_b1_speedup_vs_stock": round(stock_serve / serve_xla, 3),
        "metric_overhead_fraction": round(1 - bare_train / train, 3),
        "train_on_batch_speedup_vs_stock": round(stock_on_batch / on_batch, 3),
        "train_on_batch_metric_overhead_fraction": round(1 - bare_on_batch / on_batch, 3),
        "steps_per_execution_speedup": round(train / many_train, 3),
        "steps_per_execution_metric_overhead_fraction": round(1 - many_bare_train / many_train, 3),
        "train_step_ms": round(1e3 * train, 1), "stock_train_step_ms": round(1e3 * stock_train, 1),
        "train_step_ms_without_metrics": round(1e3 * bare_train, 1),
        "train_on_batch_ms": round(1e3 * on_batch, 1), "stock_train_on_batch_ms": round(1e3 * stock_on_batch, 1),
        "train_on_batch_ms_without_metrics": round(1e3 * bare_on_batch, 1),
        "steps_per_execution_train_step_ms": round(1e3 * many_train, 1),
        "steps_per_execution_train_step_ms_without_metrics": round(1e3 * many_bare_train, 1),
        "b1_ms": round(1e3 * b1, 2), "stock_b1_ms": round(1e3 * stock_b1, 2),
        "b1_ms_interleaved": round(1e3 * b1_interleaved, 2),
        "stock_b1_ms_interleaved": round(1e3 * stock_b1_interleaved, 2),
        "serving_b1_ms": round(1e3 * serve, 2), "serving_xla_b1_ms": round(1e3 * serve_xla, 2),
        "stock_serving_b1_ms": round(1e3 * stock_serve, 2),
        **fresh, **{f"stock_{k}": v for k, v in stock_fresh.items()},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--fresh", choices=sorted(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--stock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh:
        return measure_fresh(args.fresh, args.stock, args.batch_size)
    keys = args.models.split(",")
    unknown = sorted(set(keys) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    results = {key: measure(key, args.batch_size, args.repeats) for key in keys}
    print(json.dumps({"batch_size": args.batch_size, "steps": STEPS, "features": FEATURES,
                      "steps_per_sample": STEPS_PER_SAMPLE, "steps_per_execution": STEPS_PER_EXECUTION,
                      "threads": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                      "tensorflow": tf.__version__, "models": results}, indent=1))


if __name__ == "__main__":
    main()
