"""The C-LSTM of Barnum et al.: the structured layer equals the per-step mathematics; fusion depths on av_mnist."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.zoo.clstm import ConvLSTMFusion, per_step_reference
from model_harness import run_model_test

IMAGE = tf.random.stateless_normal((3, 12, 12, 1), [0, 1])
AUDIO = tf.random.stateless_normal((3, 7, 20), [0, 2])


@pytest.mark.parametrize("return_sequences", [True, False])
def test_structured_layer_equals_the_per_step_reference(return_sequences):
    layer = ConvLSTMFusion(8, return_sequences=return_sequences)
    np.testing.assert_allclose(layer(IMAGE, AUDIO), per_step_reference(layer, IMAGE, AUDIO), atol=1e-5)
    sequence = tf.random.stateless_normal((3, 5, 6, 6, 4), [0, 3])
    second = ConvLSTMFusion(8, return_sequences=return_sequences)
    np.testing.assert_allclose(second(sequence), per_step_reference(second, sequence), atol=1e-5)


def test_structured_layer_has_the_per_step_reference_gradients():
    """The structured backward pass (unstacked input term, no recurrent term at t = 0) differentiates the same
    function: gradients for every weight and both inputs match the per-step reference's."""
    sequence = tf.random.stateless_normal((3, 5, 6, 6, 4), [0, 3])
    for spatial, vector in ((IMAGE, AUDIO), (sequence, None), (sequence, AUDIO[:, :5])):
        layer = ConvLSTMFusion(8, return_sequences=True)
        inputs = [spatial] if vector is None else [spatial, vector]
        layer(*inputs)
        gradients = []
        for fn in (layer, lambda *x: per_step_reference(layer, *x)):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = fn(*inputs)
                loss = tf.reduce_sum(outputs * tf.random.stateless_normal(outputs.shape, [2, 0]))
            gradients.append(tape.gradient(loss, layer.trainable_weights + inputs))
        for structured, reference in zip(*gradients):
            np.testing.assert_allclose(structured, reference, rtol=1e-4, atol=1e-5)


def test_zero_audio_leaves_a_function_of_the_image_and_zero_image_of_the_audio():
    layer = ConvLSTMFusion(8)
    silent = tf.zeros_like(AUDIO)
    before = layer(IMAGE, silent)
    layer.vector_kernel.assign(tf.random.stateless_normal(layer.vector_kernel.shape, [1, 1]))
    np.testing.assert_allclose(layer(IMAGE, silent), before, atol=1e-6)  # the audio weights play no part
    assert not np.allclose(layer(IMAGE, AUDIO), before)
    blank = tf.zeros_like(IMAGE)
    before = layer(blank, AUDIO)
    layer.input_kernel.assign(tf.random.stateless_normal(layer.input_kernel.shape, [1, 2]))
    np.testing.assert_allclose(layer(blank, AUDIO), before, atol=1e-6)  # only audio and hidden path remain


def test_only_zeroes_the_other_input():
    info = datasets.info("synthetic_av")
    image = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    audio = np.random.default_rng(1).normal(size=(2, 20, 32)).astype("float32")
    model = zoo.create("clstm_av", info, filters=4, hidden=8, max_frames=5, only="image")
    np.testing.assert_allclose(model({"image": image, "audio": audio}),
                               model({"image": image, "audio": np.zeros_like(audio)}), atol=1e-6)
    with pytest.raises(ValueError, match="only must be None, 'image' or 'audio'"):
        zoo.create("clstm_av", info, only="video")
    with pytest.raises(ValueError, match="one image and one spectrogram"):
        zoo.create("clstm_av", "higgs")


@pytest.mark.parametrize("fusion", ["initial", "second", "fc"])
def test_fusion_depths_train_on_real_av_mnist(fusion, data_dir, tmp_path):
    x, y = next(iter(datasets.load("av_mnist", "train", data_dir=data_dir, batch_size=128, num_pairs=128)))
    features = {k: v.numpy() for k, v in x.items()}
    run_model_test("clstm_av", datasets.info("av_mnist"), features, y.numpy(), tmp_path, steps=20,
                   fusion=fusion, filters=8, hidden=32, max_frames=8)


def test_fusion_depth_study_writes_grids_and_differences(data_dir, tmp_path):
    from multisensory.training import commands

    out = str(tmp_path / "study")
    assert commands.main(["study", "fusion-depth", "--data-dir", data_dir, "--out", out, "--epochs", "1",
                          "--train-pairs", "64", "--test-pairs", "32", "--filters", "4", "--max-frames", "3",
                          "--snrs", "inf,0.25", "--seeds", "0,1"]) == 0
    for seed in (0, 1):  # each seed's study
        files = set(os.listdir(os.path.join(out, f"seed-{seed}")))
        for name in ("initial_snr_grid", "second_snr_grid", "fc_snr_grid", "initial_minus_second",
                     "initial_minus_fc"):
            assert {f"{name}.csv", f"{name}.png"} <= files
    reports = [json.load(open(os.path.join(out, f"seed-{s}", "study.json"))) for s in (0, 1)]
    assert set(reports[0]["test_accuracy_at_training_noise"]) == {"initial", "second", "fc"}
    assert reports[0]["settings"]["max_frames"] == 3 and reports[0]["settings"]["snrs"] == ["original", "0.25"]
    summary = json.load(open(os.path.join(out, "summary.json")))  # the seeds summarised, by hand
    for fusion in ("initial", "second", "fc"):
        values = [r["test_accuracy_at_training_noise"][fusion] for r in reports]
        assert summary["accuracy"][fusion]["mean"] == pytest.approx(np.mean(values))
        assert summary["accuracy"][fusion]["std"] == pytest.approx(np.std(values, ddof=1))
    comparison = summary["comparisons"]["initial_minus_fc"]
    differences = [r["grids"]["initial"]["values"][1][0] - r["grids"]["fc"]["values"][1][0] for r in reports]
    assert comparison["cells"]["mean"][1][0] == pytest.approx(np.mean(differences))
    assert comparison["cells"]["positive_seeds"][1][0] == sum(d > 0 for d in differences)
    assert comparison["grid_mean"]["n"] == 2 and "verdict" in comparison["accuracy"]
    assert {"initial_minus_fc_mean.csv", "initial_minus_fc_mean.png"} <= set(os.listdir(out))
