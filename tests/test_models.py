"""Every registered zoo model through the shared harness, on an audio-visual and a sequence/vector task."""

import numpy as np
import pytest

from multisensory import zoo
from multisensory.datasets import DatasetInfo, Modality, Task
from multisensory.datasets.synthetic_av import generate
from multisensory.zoo.fusion_model import MAX_PREDICT_SIGNATURES
from model_harness import SMALL, composition_cases, model_cases, run_model_test

SENTIMENT_INFO = DatasetInfo(
    name="toy_sentiment",
    modalities=(Modality("text", (6, 8), "float32", "sequence"), Modality("acoustic", (6, 5), "float32", "sequence")),
    task=Task("regression", value_range=(-3, 3), metrics=("mae", "pearson", "acc2_has0", "acc2_non0", "f1_has0",
                                                          "f1_non0", "acc5", "acc7")),
    splits={"train": 256},
)


def sentiment_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n, 6, 8)).astype("float32")
    acoustic = rng.normal(size=(n, 6, 5)).astype("float32")
    text[: n // 4, :2] = 0.0  # front padding
    labels = 3 * np.tanh(text[:, :, 0].mean(1) + acoustic[:, -1, 0])
    return {"text": text, "acoustic": acoustic}, labels.astype("float32")


@pytest.mark.parametrize("case_id, name, info, data, config", model_cases(), ids=[c[0] for c in model_cases()])
def test_model_on_classification(case_id, name, info, data, config, tmp_path):
    run_model_test(name, info, *data, tmp_path, **config)


def test_every_registered_model_has_a_case():
    assert {c[1] for c in model_cases()} | set(zoo.list_models(task="regression")) == set(zoo.list_models())


@pytest.mark.parametrize("name", zoo.list_models(task="regression"))
def test_model_on_sequence_vector_regression(name, tmp_path):
    features, labels = sentiment_data()
    model = run_model_test(name, SENTIMENT_INFO, features, labels, tmp_path, **SMALL.get(name, {}))
    assert model.predict(features, verbose=0).shape == (256,)


def test_outputs_channel_exposes_the_contract():
    composed = {c[0] for c in composition_cases()}  # the same contract; the harness checks their predictions
    for case_id, name, info, (features, _), config in model_cases():
        if case_id in composed:
            continue
        model = zoo.create(name, info, **config)
        x = {k: v[:4] for k, v in features.items()}
        out = model(x, return_outputs=True)
        assert set(out["unimodal"]) <= set(info.modality_names) | {"stage1", "stage2", "stage3"}, name
        assert out["unimodal"] and out["fused"].shape[0] == 4, name
        np.testing.assert_allclose(out["prediction"], model.predict(x, verbose=0), atol=1e-5)


def test_predict_on_batch_matches_predict_and_follows_the_model():
    """`predict_on_batch` keeps the concrete predict function of each input signature: it predicts as `predict`
    for every batch size, with the weights as they are now, and through the new function after `compile`."""
    model = zoo.create("additive_fusion", "synthetic_av", width=8, hidden=(8,))
    model.compile()
    x, _ = generate(6, seed=4)
    for n in (6, 1, 6, 3):
        batch = {k: v[:n] for k, v in x.items()}
        np.testing.assert_allclose(model.predict_on_batch(batch), model.predict(batch, verbose=0), atol=1e-6)
    before = model.predict_on_batch(x)
    kernel = model.trainable_weights[0]
    kernel.assign(kernel * 2.0 + 0.1)
    after = model.predict_on_batch(x)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, model.predict(x, verbose=0), atol=1e-6)
    model.compile()
    np.testing.assert_allclose(model.predict_on_batch(x), after, atol=1e-6)
    assert model._predict_concrete[0] is model.predict_function
    many, _ = generate(MAX_PREDICT_SIGNATURES + 2, seed=5)
    for n in range(1, MAX_PREDICT_SIGNATURES + 3):  # one function per batch size, at most MAX_PREDICT_SIGNATURES
        assert model.predict_on_batch({k: v[:n] for k, v in many.items()}).shape[0] == n
        assert len(model._predict_concrete[1]) <= MAX_PREDICT_SIGNATURES
    model.compile(run_eagerly=True)  # Keras' path
    np.testing.assert_allclose(model.predict_on_batch(x), after, atol=1e-6)


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


def test_list_models_pattern_and_task():
    assert zoo.list_models("*fusion") == ["additive_fusion", "early_fusion", "late_fusion"]
    assert zoo.list_models("mul*") == ["mul", "mulmix", "mult"]
    assert "mul" not in zoo.list_models(task="regression") and "unimodal" in zoo.list_models(task="regression")
    with pytest.raises(ValueError, match="supports classification tasks.*Models for it: additive_fusion"):
        zoo.create("mul", SENTIMENT_INFO)


@pytest.mark.parametrize("kind, shape", [("image", (16, 16, 1)), ("spectrogram", (20, 32)), ("sequence", (7, 3)),
                                         ("vector", (5,))])
def test_encoders_by_kind(kind, shape):
    encoder = zoo.encoder_for(Modality("m", shape, kind=kind), width=12)
    assert encoder.name == "m_encoder"
    assert encoder(np.zeros((3,) + shape, "float32")).shape == (3, 12)
    clone = type(encoder).from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
