"""Every registered zoo model through the shared harness, on an audio-visual and a sequence/vector task."""

import numpy as np
import pytest

from multisensory import datasets, zoo
from multisensory.datasets import DatasetInfo, Modality, Task
from multisensory.datasets.synthetic_av import generate
from model_harness import run_model_test

SENTIMENT_INFO = DatasetInfo(
    name="toy_sentiment",
    modalities=(Modality("text", (6, 8), "float32", "sequence"), Modality("acoustic", (5,), "float32", "vector")),
    task=Task("regression", value_range=(-3, 3), metrics=("mae", "pearson", "acc2_has0", "acc2_non0", "f1_has0",
                                                          "f1_non0", "acc5", "acc7")),
    splits={"train": 256},
)


def sentiment_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 6, 8)).astype("float32")
    acoustic = rng.normal(size=(n, 5)).astype("float32")
    labels = 3 * np.tanh(text[:, :, 0].mean(1) + acoustic[:, 0])
    return {"text": text, "acoustic": acoustic}, labels.astype("float32")


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_on_audio_visual_classification(name, tmp_path):
    features, labels = generate(256, seed=0)
    run_model_test(name, datasets.info("synthetic_av"), features, labels, tmp_path)


@pytest.mark.parametrize("name", zoo.list_models())
def test_model_on_sequence_vector_regression(name, tmp_path):
    features, labels = sentiment_data()
    model = run_model_test(name, SENTIMENT_INFO, features, labels, tmp_path)
    assert model.predict(features, verbose=0).shape == (256,)


def test_forward_exposes_the_contract():
    features, _ = generate(4, seed=1)
    for name in zoo.list_models():
        model = zoo.create(name, "synthetic_av")
        out = model.forward(features, training=False)
        assert set(out["unimodal"]) == {"image", "audio"}, name
        assert out["fused"].shape[0] == 4, name
        np.testing.assert_allclose(out["prediction"], model.predict(features, verbose=0), atol=1e-6)


def test_late_fusion_averages_probabilities():
    features, _ = generate(8, seed=2)
    model = zoo.create("late_fusion", "synthetic_av")
    out = model.forward(features)
    probs = [np.exp(l) / np.exp(l).sum(-1, keepdims=True) for l in
             (np.asarray(out["unimodal_predictions"][m]) for m in ("image", "audio"))]
    softmax = np.exp(out["prediction"]) / np.exp(out["prediction"]).sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax, (probs[0] + probs[1]) / 2, rtol=1e-5)


def test_additive_fusion_sums_or_concatenates():
    features, _ = generate(4, seed=3)
    summed = zoo.create("additive_fusion", "synthetic_av", width=16).forward(features)
    np.testing.assert_allclose(summed["fused"], summed["unimodal"]["image"] + summed["unimodal"]["audio"], rtol=1e-6)
    concat = zoo.create("additive_fusion", "synthetic_av", width=16, combine="concat").forward(features)
    assert concat["fused"].shape == (4, 32)


def test_list_models_pattern():
    assert zoo.list_models("*fusion") == ["additive_fusion", "early_fusion", "late_fusion"]
    assert zoo.list_models("late*") == ["late_fusion"]


@pytest.mark.parametrize("kind, shape", [("image", (16, 16, 1)), ("spectrogram", (20, 32)), ("sequence", (7, 3)),
                                         ("vector", (5,))])
def test_encoders_by_kind(kind, shape):
    encoder = zoo.encoder_for(Modality("m", shape, kind=kind), width=12)
    assert encoder.name == "m_encoder"
    assert encoder(np.zeros((3,) + shape, "float32")).shape == (3, 12)
    clone = type(encoder).from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
