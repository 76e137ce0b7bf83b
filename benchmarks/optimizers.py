"""The zoo's fused Adam/AdamW (`zoo.optimizers`) against Keras' own on whole training steps. Prints one JSON object.

Per model, under `"models"`, each measured with the zoo's optimisers (`fused`) and with Keras' (`keras`: the same
classes and arguments from `keras.optimizers`, for the model and, with synergy, the C-Network):
- `train_graph_ops`: the operations of the traced training step (`model.train_step` in a `tf.function`);
- `first_step_s`: building the model, compiling it and its first `train_on_batch` (tracing, graph optimisation and
  compilation included), each in a fresh process, `--repeats` processes per optimiser taking turns; medians;
- `step_ms`: later training steps, the two models in one process taking turns; medians;
- `max_abs_weight_diff`: after 5 steps on the same batch from the same seed (rounding: `zoo/optimizers.py`).
Ratios are keras / fused (> 1: the fused update is faster or smaller). Models: `synergy`, `additive_fusion` with
the MulMix head and the synergy regulariser on `synthetic_av` (batch 32), as in the test harness; `mmlatch` (d = 100)
and `ef_lstm` at MOSEI's shapes (batch 32, `benchmarks/recurrent.py`).

Usage: python benchmarks/optimizers.py [--models synergy,mmlatch,ef_lstm] [--repeats 3] [--steps 20]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from multisensory import datasets, zoo  # noqa: E402
from multisensory.datasets.synthetic_av import generate  # noqa: E402
from multisensory.training.synergy import SynergyConfig  # noqa: E402
from recurrent import INFO, MODELS, batch, medians_in_turns, timed  # noqa: E402  (benchmarks/recurrent.py)

KEYS = ("synergy", "mmlatch", "ef_lstm")


def data(key):
    """(x, y) of one batch of 32 for the model `key`."""
    if key == "synergy":
        x, y = generate(32, seed=0)
        return x, y
    return batch(32)


def compiled(key, fused):
    """The model `key`, compiled with the zoo's default optimisers (`fused`: Adam, or AdamW with clipnorm with
    synergy) or with Keras' classes and the same arguments; the same seed, so the same weights and dropout masks."""
    keras.utils.set_random_seed(0)
    if key == "synergy":
        model = zoo.create("additive_fusion", datasets.info("synthetic_av"),
                           head={"type": "mulmix", "width": 16}, synergy=SynergyConfig())
    else:
        name, config = MODELS[key]
        model = zoo.create(name, INFO, **config)
    if fused:
        model.compile()
        return model
    rate = model.default_learning_rate
    model.compile(optimizer=keras.optimizers.Adam(rate) if model.cnetwork is None
                  else keras.optimizers.AdamW(rate, clipnorm=model.synergy.clipnorm))
    if model.cnetwork is not None:
        model.synergy_optimizer = keras.optimizers.AdamW.from_config(model.synergy_optimizer.get_config())
        model.synergy_optimizer.build(model.variable_groups()[1])
    return model


def graph_ops(model, x, y):
    x = {k: tf.constant(v) for k, v in x.items()}
    step = tf.function(lambda x, y: model.train_step((x, y)), autograph=False)
    return len(step.get_concrete_function(x, tf.constant(y)).graph.get_operations())


def fresh_first_step(key, fused):
    """Seconds to build, compile and take the first training step in a new process."""
    command = [sys.executable, __file__, "--fresh", key] + (["--fused"] if fused else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["first_step_s"]


def measure(key, repeats, steps):
    x, y = data(key)
    fused, stock = compiled(key, True), compiled(key, False)
    for _ in range(5):
        fused.train_on_batch(x, y), stock.train_on_batch(x, y)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(fused.get_weights(), stock.get_weights()))
    fused_ms, stock_ms = (1e3 * t for t in medians_in_turns(
        [lambda: fused.train_on_batch(x, y), lambda: stock.train_on_batch(x, y)], steps))
    ops = {"fused": graph_ops(fused, x, y), "keras": graph_ops(stock, x, y)}
    firsts = {"fused": [], "keras": []}
    for _ in range(repeats):
        for label in firsts:
            firsts[label].append(fresh_first_step(key, label == "fused"))
    first = {label: float(np.median(times)) for label, times in firsts.items()}
    return {
        "optimizers": [type(fused.optimizer).__module__ + "." + type(fused.optimizer).__name__,
                       type(stock.optimizer).__module__ + "." + type(stock.optimizer).__name__],
        "train_graph_ops": ops, "ops_ratio": round(ops["keras"] / ops["fused"], 2),
        "first_step_s": {label: round(t, 2) for label, t in first.items()},
        "first_step_runs_s": firsts, "first_step_speedup": round(first["keras"] / first["fused"], 3),
        "step_ms": {"fused": round(fused_ms, 2), "keras": round(stock_ms, 2)},
        "step_speedup": round(stock_ms / fused_ms, 3), "max_abs_weight_diff": diff,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(KEYS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--fresh", choices=KEYS, help=argparse.SUPPRESS)
    parser.add_argument("--fused", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh:
        start = time.perf_counter()
        model = compiled(args.fresh, args.fused)
        x, y = data(args.fresh)
        print(json.dumps({"first_step_s": round(time.perf_counter() - start + timed(
            lambda: model.train_on_batch(x, y)), 3)}))
        return
    keys = args.models.split(",")
    unknown = sorted(set(keys) - set(KEYS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(KEYS)}")
    results = {key: measure(key, args.repeats, args.steps) for key in keys}
    print(json.dumps({"benchmark": "optimizers", "models": results, "threads": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(), "tensorflow": tf.__version__},
                     indent=1))


if __name__ == "__main__":
    main()
