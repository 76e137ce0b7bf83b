"""Up to which batch the exports' fused LSTM kernel beats their portable loop. Prints one JSON object.

Exports trace the LSTMs without XLA; there a call of at most `zoo.recurrent.fused_max_batch(inputs)` rows runs each
LSTM as one `BlockLSTMV2` kernel, a larger one the portable loop (`docs/performance.md`). Measured in one run:
- `lstm`: one `FastLSTM` over 50 steps in a traced function as an export traces it, by inputs, units and batch:
  milliseconds of the fused kernel and of the portable loop (medians, the two taking turns);
- `exports`: whole exports (`serving_default`, MOSEI shapes as `benchmarks/recurrent.py`) of `--models`, one with
  the limit for narrow inputs (`FUSED_MAX_BATCH_NARROW`) as shipped and one with it lowered to `FUSED_MAX_BATCH`
  (the limit of wide inputs), by batch: milliseconds of each and the largest difference of their outputs.

Usage: python benchmarks/fused_kernel.py [--models mmlatch,mfn,ef_lstm] [--repeats 30]
"""

import argparse
import json
import os
import platform
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from multisensory import exports  # noqa: E402
from multisensory.zoo import recurrent  # noqa: E402
from recurrent import batch, build, medians_in_turns  # noqa: E402  (benchmarks/recurrent.py)

STEPS = 50
SHAPES = [(300, 100), (74, 100), (100, 300), (100, 74), (100, 35)]  # (inputs, units) of mmlatch's LSTMs
BATCHES = (1, 4, 8, 16, 32)


def milliseconds_in_turns(functions, repeats):
    """`medians_in_turns` of benchmarks/recurrent.py, in milliseconds."""
    return [round(1e3 * t, 3) for t in medians_in_turns(functions, repeats)]


def traced_lstm(features, units, fused):
    """An LSTM's forward pass traced as an export traces it, with the fused kernel for every batch or for none."""
    layer = recurrent.LSTM(units, return_sequences=True)
    layer(tf.zeros((1, STEPS, features)))
    shipped = recurrent.fused_max_batch
    recurrent.fused_max_batch = lambda _: 1 << 20 if fused else 0
    try:
        with recurrent.compiled_loops(False), recurrent.stacked_weights(layer):
            return tf.function(lambda x, mask: layer(x, mask=mask)).get_concrete_function(
                tf.TensorSpec((None, STEPS, features)), tf.TensorSpec((None, STEPS), tf.bool))
    finally:
        recurrent.fused_max_batch = shipped


def lstm_table(repeats):
    rng = np.random.default_rng(0)
    rows = []
    for features, units in SHAPES:
        fused, loop = traced_lstm(features, units, True), traced_lstm(features, units, False)
        for size in BATCHES:
            x = tf.constant(rng.standard_normal((size, STEPS, features)).astype("float32"))
            mask = tf.ones((size, STEPS), tf.bool)
            fused_ms, loop_ms = milliseconds_in_turns([lambda: fused(x, mask), lambda: loop(x, mask)], repeats)
            rows.append({"inputs": features, "units": units, "batch": size, "fused_ms": fused_ms, "loop_ms": loop_ms,
                         "limit": recurrent.fused_max_batch(features)})
    return rows


def export_table(key, repeats):
    model = build(key, False)
    folder = tempfile.mkdtemp()
    shipped = recurrent.FUSED_MAX_BATCH_NARROW
    functions = {}
    for narrow in (shipped, recurrent.FUSED_MAX_BATCH):
        recurrent.FUSED_MAX_BATCH_NARROW = narrow
        try:
            path = exports.export_saved_model(model, os.path.join(folder, str(narrow)), model_name="m")
        finally:
            recurrent.FUSED_MAX_BATCH_NARROW = shipped
        functions[narrow] = tf.saved_model.load(path).signatures["serving_default"]
    rows = []
    for size in BATCHES:
        x = {k: tf.constant(v) for k, v in batch(size, seed=2)[0].items()}
        outputs = [f(**x) for f in functions.values()]
        diff = max(float(tf.reduce_max(tf.abs(outputs[0][k] - outputs[1][k]))) for k in outputs[0])
        shipped_ms, lowered_ms = milliseconds_in_turns([lambda f=f: f(**x) for f in functions.values()], repeats)
        rows.append({"batch": size, "ms": shipped_ms, "ms_narrow_limit_lowered": lowered_ms,
                     "max_abs_diff": diff})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mmlatch,mfn,ef_lstm")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps({
        "steps": STEPS, "limits": {"FUSED_MAX_BATCH": recurrent.FUSED_MAX_BATCH,
                                   "FUSED_MAX_BATCH_NARROW": recurrent.FUSED_MAX_BATCH_NARROW,
                                   "FUSED_NARROW_INPUTS": recurrent.FUSED_NARROW_INPUTS},
        "lstm": lstm_table(args.repeats),
        "exports": {key: export_table(key, args.repeats) for key in args.models.split(",")},
        "threads": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__}, indent=1))


if __name__ == "__main__":
    main()
