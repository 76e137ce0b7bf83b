"""Mixed precision (`multisensory.zoo.precision`): what each machine may run, the float32 boundary of a model computing
in float16, and the reduced `benchmarks/gpu_check.py` (every model family trained, compared with float32 and served
under each policy this CPU runs)."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import zoo
from multisensory.datasets.synthetic_av import generate
from multisensory.training import commands, runs
from multisensory.training.synergy import SynergyConfig
from multisensory.zoo import precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_each_machine_is_told_which_precisions_it_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    assert precision.check("float32") == "float32"
    with pytest.raises(ValueError, match="mixed_float16 needs a GPU"):
        precision.check("mixed_float16")
    with pytest.raises(ValueError, match="Unknown precision 'half'; choose one of float32, mixed_float16"):
        precision.check("half")
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(ValueError, match="bfloat16 instructions"):
        precision.check("mixed_bfloat16")
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert precision.check("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [(7, 5)])  # a T4: float16 yes, bfloat16 no
    assert precision.check("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="compute capability 8.0 or newer; these have 7.5"):
        precision.check("mixed_bfloat16")
    # refused before anything is written, from the Python API and the command line
    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    with pytest.raises(ValueError, match="needs a GPU"):
        runs.train("additive_fusion", "synthetic_av", str(tmp_path / "run"), precision="mixed_float16")
    for argv in (["train", "--model", "additive_fusion"],
                 ["tune", "--model", "additive_fusion", "--directory", str(tmp_path / "studies")],
                 ["benchmark", "--models", "additive_fusion", "--out", str(tmp_path / "benchmark")]):
        code = commands.main(argv + ["--dataset", "synthetic_av", "--precision", "mixed_float16"])
        assert code == 2 and "mixed_float16 needs a GPU" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def _built(policy, name, **config):
    # Keras' own global policy, unchecked: float16 computes on CPU too, slowly, with the numbers a GPU gives
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = zoo.create(name, "synthetic_av", **config)
        model.compile()
    finally:
        keras.config.set_dtype_policy(before)
    return model


def test_a_float16_model_keeps_its_loss_head_and_synergy_terms_in_float32(tmp_path):
    """tfn with the MulMix head and MMD synergy: under mixed_float16 its layers compute in float16, but the prediction,
    the head's log-probabilities, the multiplicative loss and the C-Network's terms are float32 and match a float32
    model with the same weights within float16's rounding (rel. 2e-2); both optimisers scale the loss; the saved
    model loads as float32 with the same weights and both optimisers' states."""
    config = {"head": {"type": "mulmix", "width": 16}, "synergy": SynergyConfig().get_config()}
    exact, mixed = _built("float32", "tfn", **config), _built("mixed_float16", "tfn", **config)
    mixed.set_weights(exact.get_weights())
    assert exact.precision == "float32" and mixed.precision == "mixed_float16"
    assert mixed.get_layer("multiplicative_head").compute_dtype == "float16"
    assert mixed.cnetwork.compute_dtype == "float32" and mixed.compute_dtype == "float32"
    for optimizer in (mixed.optimizer, mixed.synergy_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(exact.optimizer, keras.optimizers.LossScaleOptimizer)
    x, y = generate(64, seed=3)
    values = {}
    for model in (exact, mixed):
        outputs = model(x, return_outputs=True)
        assert outputs["prediction"].dtype == "float32"
        assert all(p.dtype == "float32" for p in outputs["branch_log_probabilities"])
        loss = model.objective(y, outputs["branch_log_probabilities"])
        terms = model.cnetwork(outputs["unimodal"], outputs["fused"])
        assert all(t.dtype == "float32" for t in terms.values())
        values[model.precision] = {"prediction": outputs["prediction"], "loss": loss, **terms}
    for key, value in values["float32"].items():
        np.testing.assert_allclose(values["mixed_float16"][key], value, rtol=2e-2, atol=2e-2, err_msg=key)
    history = mixed.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    path = str(tmp_path / "mixed.keras")
    mixed.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = runs.load_model(path)
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]  # both optimisers' states load
    assert loaded.precision == "float32"
    for a, b in zip(loaded.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float16_attention_masks_without_overflow():
    """A masked score is -6e4 in float16 (-1e9 would be -inf, and a row of them NaN), -1e9 otherwise."""
    from multisensory.zoo.mmlatch.attention import attend

    query = tf.ones((1, 2, 4), tf.float16)
    mask = tf.constant([[False, False, False]])
    out = attend(query, tf.ones((1, 3, 4), tf.float16), tf.ones((1, 3, 4), tf.float16), mask)
    assert out.dtype == tf.float16 and np.isfinite(out.numpy()).all()


def test_the_reduced_gpu_check_trains_compares_and_serves_every_family():
    """`benchmarks/gpu_check.py --reduced`: every family trained over two replicas (logical CPUs) under mixed_float16
    (and mixed_bfloat16 where the processor has bfloat16), finite losses, probabilities within the stated tolerances of float32 on CPU, the mixed
    exports serving float32."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--reduced"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    policies = ["mixed_float16"] + (["mixed_bfloat16"] if precision.cpu_has_bfloat16() else [])
    families = {"additive_fusion", "late_fusion", "early_fusion", "clstm_av", "mmlatch", "mult", "tfn", "lmf", "mfn",
                "ef_lstm", "higgs_mlp", "resnet_cifar", "head_mulmix", "synergy"}
    for policy in policies:
        results = [r for r in report["results"] if r["precision"] == policy]
        assert {r["case"] for r in results} == families, policy
        for r in results:
            assert not r["failures"] and np.isfinite(r["loss"]) and r["cpu_max_abs_diff"] <= r["tolerance"], r
            assert r["loss_scaled"] == (policy == "mixed_float16") and r["replicas"] == 2
            assert r["served_dtype"] == "float32" and r["served_max_abs_diff"] <= 1e-2, r
    assert report["failed"] == []


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_a_mixed_float16_run_resumes_exactly_and_records_its_precision(tmp_path, monkeypatch):
    """`runs.train(precision="mixed_float16")` (the device check told a GPU is there; the numbers are float16's on any
    device) with synergy's second optimiser: both loss-scaled optimisers' states survive an interruption, so the
    resumed run ends with the uninterrupted run's weights; the settings and the published command carry the
    precision; the export serves float32."""
    from multisensory.training import checkpoints, publishing

    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [(8, 0)])
    tiny = dict(epochs=3, batch_size=16, dataset_options={"num_examples": 64}, verbose=0, precision="mixed_float16",
                config={"width": 8, "synergy": SynergyConfig().get_config()}, patience=None)
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    expected = runs.train("additive_fusion", "synthetic_av", whole, **tiny)
    with pytest.raises(KeyboardInterrupt):
        runs.train("additive_fusion", "synthetic_av", resumed, callbacks=[_Interrupt()], **tiny)
    assert checkpoints.saved_epoch(os.path.join(resumed, "backup")) == 2
    assert runs.train("additive_fusion", "synthetic_av", resumed, **tiny) == expected
    for a, b in zip(runs.load_model(os.path.join(whole, "model.keras")).get_weights(),
                    runs.load_model(os.path.join(resumed, "model.keras")).get_weights()):
        np.testing.assert_array_equal(a, b)
    settings = json.load(open(os.path.join(whole, "metrics.json")))["settings"]
    assert settings["precision"] == "mixed_float16"
    assert publishing.train_command(settings).endswith("--precision mixed_float16")
    served = tf.saved_model.load(settings["export"]).signatures["serving_default"](
        **{k: tf.constant(v[:2]) for k, v in generate(2, seed=0)[0].items()})
    assert all(t.dtype == tf.float32 for t in served.values() if t.dtype.is_floating)
