"""The zoo on the accelerators at hand: one model of every family trained, compared and served under each precision.
Prints one JSON object; exits 1 when any check fails.

For each case (additive, late, early fusion, clstm_av, mmlatch with LSTM feedback, mult, tfn, lmf, mfn, ef_lstm,
higgs_mlp, resnet_cifar, a multiplicative head, the synergy add-on) and each precision (`multisensory.zoo.precision`):

- `steps` training steps under `MirroredStrategy` over every visible GPU (the CPU without one), from one seed;
  the training loss must be finite;
- the same weights in a float32 copy of the model on the CPU predict the same inputs: the largest difference of the
  class probabilities must stay within `TOLERANCES[precision]` (float32: GPU kernels sum in other orders, and
  Ampere/Hopper GPUs multiply float32 in TF32; mixed precision: float16's 11 bits and bfloat16's 8 of mantissa);
- the model exported as a SavedModel (`multisensory.exports.export_saved_model`) answers `serving_default` with its
  own probabilities (within `SERVE_TOLERANCE`, the export being the same graph), in float32;
- examples/s of a second training pass, timed after the first has traced and compiled the step;
- on a GPU, in float32, the same steps without a strategy too (`default_strategy`): there Keras compiles the training
  step with XLA (`jit_compile="auto"`), what `multisensory train` without `--strategy` runs on a GPU.

On a machine with a GPU run it whole (under 8 minutes on one H100):

    python benchmarks/gpu_check.py              # or: make gpu-check

`--reduced` is the form the test suite runs on CPU (tests/test_precision.py), so that the script cannot rot: two steps
at batch 8 over two logical CPU devices (two replicas, as two GPUs would be), the mixed policies only (every model
trains, saves and exports in float32 over two replicas in the rest of the suite), run through Keras' global policy
whatever the device (float16 is slow on CPU but computes the same numbers) except bfloat16 on a processor without
bfloat16 instructions. Without `--reduced`, a precision this machine cannot run (`zoo.precision.check`) is reported as skipped.

No case starts after `--budget-s` seconds (default 420; none with `--reduced`), so that the check fits a short device loan; the cases left
are reported as not run (a failure), with each case's seconds to plan a rerun with `--cases` or `--precisions`.

Usage: python benchmarks/gpu_check.py [--reduced] [--precisions float32,mixed_float16,mixed_bfloat16] [--steps 20]
       [--batch-size 64] [--cases additive_fusion,mfn,...] [--budget-s 420]
"""

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback

import numpy as np

TOLERANCES = {"float32": 2e-3, "mixed_float16": 3e-2, "mixed_bfloat16": 8e-2}
SERVE_TOLERANCE = {"float32": 1e-4, "mixed_float16": 1e-2, "mixed_bfloat16": 2e-2}


def cases():
    """[(case, model name, DatasetInfo, config)]: one model of every family, small."""
    from multisensory import datasets
    from multisensory.datasets import DatasetInfo, Modality, Task
    from multisensory.training.synergy import SynergyConfig

    av = datasets.info("synthetic_av")
    sequences = DatasetInfo("two_sequences", [Modality("words", (12, 16), kind="sequence"),
                                              Modality("voice", (12, 8), kind="sequence")],
                            Task("classification", num_classes=2), {"train": 256})
    vectors = DatasetInfo("two_vectors", [Modality("low_level", (21,)), Modality("high_level", (7,))],
                          Task("classification", num_classes=2), {"train": 256})
    images = DatasetInfo("images", [Modality("image", (32, 32, 3), kind="image")],
                         Task("classification", num_classes=10), {"train": 256})
    synergy = SynergyConfig().get_config()  # MMD, the paper's defaults
    return [
        ("additive_fusion", "additive_fusion", av, {}),
        ("late_fusion", "late_fusion", av, {}),
        ("early_fusion", "early_fusion", av, {}),
        ("clstm_av", "clstm_av", av, {"fusion": "second", "filters": 8, "hidden": 16, "max_frames": 6}),
        ("mmlatch", "mmlatch", av, {"units": 16, "num_layers": 1, "heads": 2, "feedback": "lstm", "backbone": "lstm"}),
        ("mult", "mult", av, {"units": 16, "num_layers": 1, "heads": 2}),
        ("tfn", "tfn", av, {}),
        ("lmf", "lmf", av, {}),
        ("mfn", "mfn", sequences, {"units": 8, "memory": 8, "attention_hidden": 8}),
        ("ef_lstm", "ef_lstm", sequences, {}),
        ("higgs_mlp", "higgs_mlp", vectors, {"variant": "base", "width": 32}),
        ("resnet_cifar", "resnet_cifar", images, {"depth": 8, "variant": "base", "augment": False}),
        ("head_mulmix", "additive_fusion", av, {"head": "mulmix"}),
        ("synergy", "tfn", av, {"synergy": synergy}),
    ]


def inputs(info, n, seed=0):
    """Seeded features of every modality (front-padded sequences) and labels."""
    rng = np.random.default_rng(seed)
    features = {}
    for m in info.modalities:
        x = rng.normal(size=(n, *m.shape)).astype("float32")
        if m.kind == "sequence":
            x[: n // 3, : m.shape[0] // 3] = 0.0  # some padding
        features[m.name] = x
    return features, rng.integers(0, info.task.num_classes, n).astype("int32")


def softmax(logits):
    z = np.asarray(logits, "float64")
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def check(case, name, info, config, policy, steps, batch_size, workdir, strategy, default_strategy=False):
    """One case under one precision, trained under `strategy` (and with `default_strategy` without one): the dict of
    the module docstring's checks."""
    import keras
    import tensorflow as tf

    from multisensory import zoo
    from multisensory.exports import export_saved_model
    from multisensory.zoo.precision import unchecked  # Keras' global policy, unchecked: `--reduced` runs any

    features, labels = inputs(info, steps * batch_size)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size)
    with strategy.scope(), unchecked(policy):
        keras.utils.set_random_seed(0)
        model = zoo.create(name, info, **config)
        model.compile()
    result = {"case": case, "model": name, "precision": policy, "replicas": strategy.num_replicas_in_sync,
              "loss_scaled": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)}
    loss = model.fit(data, epochs=1, verbose=0).history["loss"][-1]
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    result["examples_per_s"] = round(steps * batch_size / (time.perf_counter() - start), 1)
    result["loss"] = float(loss)
    probe = {k: v[:batch_size] for k, v in features.items()}
    probabilities = softmax(model.predict(probe, verbose=0))
    with tf.device("/CPU:0"), unchecked("float32"):
        reference = zoo.create(name, info, **config)
        reference.set_weights(model.get_weights())
        expected = softmax(reference.predict(probe, verbose=0))
    result["cpu_max_abs_diff"] = float(np.abs(probabilities - expected).max())
    result["tolerance"] = TOLERANCES[policy]
    failures = [] if math.isfinite(loss) else [f"training loss {loss}"]
    if not result["cpu_max_abs_diff"] <= TOLERANCES[policy]:
        failures.append(f"probabilities differ from float32 on CPU by {result['cpu_max_abs_diff']:.3g}")
    path = export_saved_model(model, os.path.join(workdir, policy), model_name=case)
    served = tf.saved_model.load(path).signatures["serving_default"](
        **{k: tf.constant(v) for k, v in probe.items()})
    result["served_dtype"] = served["probabilities"].dtype.name
    result["served_max_abs_diff"] = float(np.abs(served["probabilities"].numpy() - probabilities).max())
    if served["probabilities"].dtype != tf.float32:
        failures.append(f"serving_default returns {served['probabilities'].dtype.name}")
    if not result["served_max_abs_diff"] <= SERVE_TOLERANCE[policy]:
        failures.append(f"the export's probabilities differ by {result['served_max_abs_diff']:.3g}")
    if default_strategy:
        with unchecked(policy):
            keras.utils.set_random_seed(0)
            plain = zoo.create(name, info, **config)
            plain.compile()
        start = time.perf_counter()
        plain_loss = plain.fit(data, epochs=1, verbose=0).history["loss"][-1]
        result["default_strategy"] = {"jit_compile": bool(plain.jit_compile), "loss": float(plain_loss),
                                      "seconds": round(time.perf_counter() - start, 1)}
        if not math.isfinite(plain_loss):
            failures.append(f"training loss {plain_loss} without a strategy")
    result["failures"] = failures
    return result


def runnable(policy, reduced):
    """None when `policy` runs here, else why not (see the module docstring)."""
    from multisensory.zoo import precision

    if reduced:
        if policy == "mixed_bfloat16" and not precision.cpu_has_bfloat16() and not precision.gpu_capabilities():
            return "this processor has no bfloat16 instructions"
        return None
    try:
        precision.check(policy)
    except ValueError as error:
        return str(error)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the CPU form the test suite runs")
    parser.add_argument("--precisions", help="comma-separated (default float32,mixed_float16,mixed_bfloat16; "
                        "reduced: the mixed ones)")
    parser.add_argument("--steps", type=int, help="training steps per pass (default 20; reduced 2)")
    parser.add_argument("--batch-size", type=int, help="the global batch (default 64; reduced 8)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--budget-s", type=float,
                        help="start no case after this many seconds (default 420, a short device loan; reduced: "
                             "none); the cases left are reported as not run, a failure")
    args = parser.parse_args(argv)
    steps = args.steps or (2 if args.reduced else 20)
    precisions = args.precisions or ("mixed_float16,mixed_bfloat16" if args.reduced else
                                     "float32,mixed_float16,mixed_bfloat16")
    batch_size = args.batch_size or (8 if args.reduced else 64)
    budget = args.budget_s or (math.inf if args.reduced else 420.0)
    import tensorflow as tf

    if args.reduced and not tf.config.list_physical_devices("GPU"):  # two replicas, before TensorFlow starts
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from multisensory.training import distribute

    strategy = distribute.strategy("mirrored")  # one for every case: their collectives share its devices
    started = time.perf_counter()
    chosen = cases()
    if args.cases:
        known = {c[0] for c in chosen}
        wanted = args.cases.split(",")
        if set(wanted) - known:
            parser.error(f"unknown cases {sorted(set(wanted) - known)}; cases: {', '.join(sorted(known))}")
        chosen = [c for c in chosen if c[0] in wanted]
    gpus = tf.config.list_physical_devices("GPU")
    report = {"device": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
              or [platform.processor() or platform.machine()], "gpus": len(gpus), "reduced": args.reduced,
              "steps": steps, "batch_size": batch_size, "tolerances": TOLERANCES, "skipped": {}, "results": []}
    with tempfile.TemporaryDirectory() as workdir:
        for policy in precisions.split(","):
            why = runnable(policy, args.reduced)
            if why is not None:
                report["skipped"][policy] = why
                continue
            for case, name, info, config in chosen:
                begun = time.perf_counter()
                if begun - started > budget:
                    report["results"].append({"case": case, "model": name, "precision": policy, "failures": [
                        f"not run: the time budget of {budget:g} s was spent (--budget-s, --cases)"]})
                    continue
                try:
                    result = check(case, name, info, config, policy, steps, batch_size, workdir,
                                   strategy, default_strategy=bool(gpus) and policy == "float32")
                except Exception as error:  # every case is reported; the exit status says one failed
                    result = {"case": case, "model": name, "precision": policy,
                              "failures": [f"{type(error).__name__}: {error}".splitlines()[0][:500]],
                              "traceback": traceback.format_exc(limit=-8)}
                result["seconds"] = round(time.perf_counter() - begun, 1)
                report["results"].append(result)
                print(f"{case} {policy}: {'ok' if not result['failures'] else result['failures']}", file=sys.stderr,
                      flush=True)
    report["failed"] = [f"{r['case']} {r['precision']}" for r in report["results"] if r["failures"]]
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
