"""MMLatch and MulT: eq. 4 by hand, stage I without gradient into the encoders, symmetric attention, padding."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.training import commands
from multisensory.datasets import DatasetInfo, Modality, Task
from multisensory.zoo.mmlatch import CrossModalAttention, SymmetricAttention
from model_harness import SMALL, assert_front_padding_is_ignored
from sentiment_fixtures import write_mult_pickle
from multisensory.training.synergy import SynergyConfig

THREE = DatasetInfo("three", [Modality(m, (5, d), kind="sequence") for m, d in (("text", 4), ("audio", 3),
                                                                                ("vision", 2))],
                    Task("regression", value_range=(-3, 3)), {"train": 8})


def _three(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {m.name: rng.normal(size=(n,) + m.shape).astype("float32") for m in THREE.modalities}


def test_eq4_masks_of_one_and_zero_give_one_half():
    model = zoo.create("mmlatch", THREE, feedback="dense", units=4, dropout=0.0)
    for source, bias in (("audio", 50.0), ("vision", -50.0)):  # f_{audio->text} = 1, f_{vision->text} = 0
        layer = model.feedback_layers[f"{source}_to_text"]
        layer.kernel.assign(np.zeros(layer.kernel.shape))
        layer.bias.assign(np.full(layer.bias.shape, bias))
    x = _three()
    outputs = model(x, return_outputs=True)
    np.testing.assert_allclose(outputs["masks"]["text"], 0.5, atol=1e-6)
    # Stage II sees i~_text = 0.5 i_text: the baseline network on the masked inputs gives the prediction.
    masked = {m: x[m] * np.asarray(outputs["masks"][m]) for m in x}
    masks = {m: tf.reduce_any(v != 0, -1) for m, v in x.items()}
    core = model.core(masked, masks)
    np.testing.assert_allclose(outputs["prediction"], model.head(core["fused"])[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(masked["text"], 0.5 * x["text"], rtol=1e-6)


@pytest.mark.parametrize("feedback, backbone", [("lstm", "lstm"), ("dense", "lstm"), ("lstm", "mult")])
def test_stage_one_sends_no_gradient_into_the_backbone(feedback, backbone):
    model = zoo.create("mmlatch", THREE, feedback=feedback, backbone=backbone, units=4, num_layers=1, heads=2)
    x = _three()
    with tf.GradientTape(persistent=True) as tape:
        masks = model(x, training=True, return_outputs=True)["masks"]
        stage_one = sum(tf.reduce_sum(m) for m in masks.values())
    backbone_grads = tape.gradient(stage_one, model.core.trainable_variables)
    assert all(g is None or not np.any(g) for g in backbone_grads)
    feedback = [v for layer in model.feedback_layers.values() for v in layer.trainable_variables]
    assert all(g is not None and np.any(g) for g in tape.gradient(stage_one, feedback))


def test_symmetric_attention_has_projections_per_modality_by_hand():
    """Eq. 1: a_kl = softmax(Q_k K_l^T / sqrt(d)) V_l + r_k with each modality's own W^Q, W^K, W^V."""
    layer = SymmetricAttention(4)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 6, 4)).astype("float32"), rng.normal(size=(2, 6, 4)).astype("float32")
    mask_a, mask_b = np.ones((2, 6), bool), np.r_[[[False] * 2 + [True] * 4], [[True] * 6]]
    out = layer(a, b, mask_a, mask_b).numpy()
    assert len(layer.trainable_weights) == 6
    qk, kl, vl = (getattr(layer.k_to_l, n).kernel.numpy() for n in ("query", "key", "value"))
    ql, kk, vk = (getattr(layer.l_to_k, n).kernel.numpy() for n in ("query", "key", "value"))

    def attend_by_hand(q, k, v, mask):
        scores = np.where(mask[:, None, :], q @ np.swapaxes(k, 1, 2) / 2.0, -np.inf)  # sqrt(d) = 2
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        return (weights / weights.sum(-1, keepdims=True)) @ v

    expected = (attend_by_hand(a @ qk, b @ kl, b @ vl, mask_b) + a) + (attend_by_hand(b @ ql, a @ kk, a @ vk, mask_a)
                                                                      + b)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # A masked key is never attended to: changing it changes nothing.
    attention = CrossModalAttention(4)
    changed = b.copy()
    changed[0, :2] = 100.0
    np.testing.assert_allclose(attention(a, b, mask_b), attention(a, changed, mask_b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, config", [("mult", SMALL["mult"]), ("mmlatch", SMALL["mmlatch"]),
                                          ("mmlatch", {**SMALL["mmlatch"], "backbone": "mult"})])
def test_front_padding_is_ignored(name, config):
    assert_front_padding_is_ignored(name, config)


def test_masks_are_not_dropped_at_inference():
    model = zoo.create("mmlatch", THREE, units=4, dropout=0.5)
    x = _three()
    first, second = (model(x, return_outputs=True) for _ in range(2))
    np.testing.assert_array_equal(first["prediction"], second["prediction"])
    assert all(float(tf.reduce_max(m)) < 1.0 for m in first["masks"].values())
    trained = model(x, training=True, return_outputs=True)["prediction"]
    assert not np.allclose(trained, first["prediction"])


def test_without_feedback_the_baseline_has_no_masks():
    baseline = zoo.create("mmlatch", THREE, feedback=None, units=4)
    full = zoo.create("mmlatch", THREE, units=4)
    assert "masks" not in baseline(_three(), return_outputs=True)
    assert not hasattr(baseline, "feedback_layers") and baseline.count_params() == full.core.count_params() + sum(
        w.size for w in full.head.get_weights())


def test_bad_configuration_lists_the_choices():
    with pytest.raises(ValueError, match=r"Unknown feedback 'gru'; choose one of \['lstm', 'dense', None\]"):
        zoo.create("mmlatch", THREE, feedback="gru")
    with pytest.raises(ValueError, match=r"Unknown backbone 'gru'; choose one of \['lstm', 'mult'\]"):
        zoo.create("mmlatch", THREE, backbone="gru")


def test_trains_on_the_mosi_format(tmp_path):
    """The paper's model on the sentiment loader's output. (The MulT backbone and `mult` train in the shared harness
    and on a sentiment-like regression in test_models.py.)"""
    write_mult_pickle(tmp_path / "mosi", length=8)
    info = datasets.info("mosi", data_dir=str(tmp_path))
    keras.utils.set_random_seed(0)
    model = zoo.create("mmlatch", info, units=8)
    model.compile()
    history = model.fit(datasets.load("mosi", "train", data_dir=str(tmp_path), batch_size=4), epochs=4,
                        verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert {"mae", "acc2_non0", "acc7"} <= set(history)


def test_evaluate_writes_the_average_mask_per_class(tmp_path):
    write_mult_pickle(tmp_path / "mosi", length=6)
    info = datasets.info("mosi", data_dir=str(tmp_path))
    model = zoo.create("mmlatch", info, feedback="dense", units=4)
    path = str(tmp_path / "mmlatch.keras")
    model.save(path)
    out = tmp_path / "masks"
    assert commands.main(["evaluate", "--model-path", path, "--dataset", "mosi", "--data-dir", str(tmp_path),
                     "--robustness", "masks", "--batch-size", "4", "--out", str(out)]) == 0
    x, y = next(iter(datasets.load("mosi", "test", data_dir=str(tmp_path), batch_size=100, shuffle=False)))
    classes = sorted(set(np.clip(np.round(np.asarray(y)), -3, 3).astype(int)))
    rows = (out / "masks_vision.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == classes and len(rows[0].split(",")) == 1 + 20
    assert (out / "masks_text.png").exists() and list((out / "logs").iterdir())
    # By hand for the lowest class: the masks' mean over the non-padding steps, averaged over its examples.
    masks = model(x, return_outputs=True)["masks"]["vision"].numpy()
    real = np.any(np.asarray(x["vision"]) != 0, -1)[..., None]
    chosen = np.clip(np.round(np.asarray(y)), -3, 3).astype(int) == classes[0]
    expected = ((masks * real).sum(1) / real.sum(1))[chosen].mean(0)
    np.testing.assert_allclose([float(v) for v in rows[1].split(",")[1:]], expected, rtol=1e-4)


def test_paper_training_defaults():
    model = zoo.create("mmlatch", THREE, units=4)
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam) and np.isclose(float(model.optimizer.learning_rate), 5e-4)
    assert isinstance(model.loss, keras.losses.MeanAbsoluteError)
    plateau, stopping = model.recipe(epochs=20)
    # every selection is on the task's main validation metric, not val_loss (which holds beta L_reg under synergy)
    assert (plateau.factor, plateau.patience, plateau.monitor, plateau.mode) == (0.5, 2, "val_mae", "min")
    assert (stopping.patience, stopping.monitor, stopping.mode, stopping.restore_best_weights) == (
        10, "val_mae", "min", True)
    binary = dataclasses.replace(THREE, task=Task("classification", num_classes=2))
    synergy = zoo.create("mmlatch", binary, units=4, synergy=SynergyConfig())
    assert [(c.monitor, c.mode) for c in synergy.recipe(epochs=20)] == [("val_accuracy", "max")] * 2


def test_mult_output_block_is_the_papers_residual_block_by_hand():
    from multisensory.zoo.mmlatch.mult import ResidualOutput

    block = ResidualOutput(3)
    z = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    out = block(z).numpy()
    w1, b1 = block.proj1.kernel.numpy(), block.proj1.bias.numpy()
    w2, b2 = block.proj2.kernel.numpy(), block.proj2.bias.numpy()
    wo, bo = block.out.kernel.numpy(), block.out.bias.numpy()
    expected = ((np.maximum(z @ w1 + b1, 0) @ w2 + b2) + z) @ wo + bo
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_mult_cross_layers_normalise_query_and_source_with_one_layer_norm():
    from multisensory.zoo.mmlatch.mult_core import TransformerLayer

    layer = TransformerLayer(4, heads=2, dropout=0.0, attention_dropout=0.0, cross=True)
    x, source = np.ones((1, 3, 4), "float32"), np.arange(12, dtype="float32").reshape(1, 3, 4)
    layer(x, np.ones((1, 3), bool), source)
    assert [n.name for n in layer.norms] == ["norm_attention", "norm_ffn"]


def test_attention_over_one_step_is_said_once_and_passes_the_value():
    """Single-vector modalities: attention over one key weighs it 1, so the layer returns the value; the models say
    so once and Keras' size-1 softmax warning does not repeat on every trace."""
    import warnings

    from model_harness import TWO_VECTORS
    from multisensory.zoo.mmlatch.attention import attend

    rng = np.random.default_rng(0)
    query, key, value = (rng.normal(size=s).astype("float32") for s in ((2, 3, 4), (2, 1, 4), (2, 1, 5)))
    for mask in (np.ones((2, 1), bool), np.zeros((2, 1), bool)):
        np.testing.assert_array_equal(attend(query, key, value, mask), np.broadcast_to(value, (2, 3, 5)))
    x = {"low_level": rng.normal(size=(4, 21)).astype("float32"), "high_level": rng.normal(size=(4, 7)).astype(
        "float32")}
    for name, config in (("mult", {"units": 8, "num_layers": 1, "heads": 2}), ("mmlatch", {"units": 8})):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = zoo.create(name, TWO_VECTORS, **config)
            model.compile()
            model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
            model.predict(x, verbose=0)
        messages = [str(w.message) for w in caught]
        notes = [m for m in messages if "attention over one step gives it weight 1" in m]
        assert len(notes) == 1 and "low_level" in notes[0], messages
        assert not [m for m in messages if "softmax over axis" in m], messages
