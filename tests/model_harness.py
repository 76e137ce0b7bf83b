"""The test every zoo model goes through: config round trip, training, gradients, `.keras` and SavedModel exports."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.datasets import DatasetInfo, Modality, Task
from multisensory.datasets.synthetic_av import generate
from multisensory.exports import export_saved_model
from multisensory.training.synergy import SynergyConfig
from multisensory.zoo import optimizers
from multisensory.zoo.clstm.clstm_av import FUSIONS as CLSTM_FUSIONS
from multisensory.zoo.multiplicative.higgs_mlp import VARIANTS as HIGGS_VARIANTS
from multisensory.zoo.multiplicative.resnet_cifar import VARIANTS as RESNET_VARIANTS

TINY_IMAGES = DatasetInfo("tiny_images", [Modality("image", (32, 32, 3), kind="image")],
                          Task("classification", num_classes=3), {"train": 96})
TWO_SEQUENCES = DatasetInfo("two_sequences", [Modality("words", (7, 6), kind="sequence"),
                                              Modality("voice", (7, 4), kind="sequence")],
                            Task("classification", num_classes=2), {"train": 256})
TWO_VECTORS = DatasetInfo("two_vectors", [Modality("low_level", (21,)), Modality("high_level", (7,))],
                          Task("classification", num_classes=2), {"train": 256})


def tiny_images(n=96, seed=0):
    """Images whose brightest colour channel is the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype("int32")
    images = rng.uniform(0, 0.5, (n, 32, 32, 3)).astype("float32")
    images[np.arange(n), :, :, labels] += 0.5
    return {"image": images}, labels


def two_vectors(n=256, seed=0):
    """Two vector modalities, each carrying part of the label's evidence."""
    rng = np.random.default_rng(seed)
    low, high = rng.normal(size=(n, 21)).astype("float32"), rng.normal(size=(n, 7)).astype("float32")
    return {"low_level": low, "high_level": high}, (low[:, 0] + high[:, 0] > 0).astype("int32")


def two_sequences(n=256, seed=0):
    """Two aligned, front-padded sequences; the label is the sign of the words' last first feature plus noise."""
    rng = np.random.default_rng(seed)
    words, voice = rng.normal(size=(n, 7, 6)).astype("float32"), rng.normal(size=(n, 7, 4)).astype("float32")
    words[: n // 3, :3] = voice[: n // 3, :3] = 0.0
    return {"words": words, "voice": voice}, (words[:, -1, 0] + 0.3 * voice[:, -1, 0] > 0).astype("int32")


SMALL = {"mult": {"units": 8, "num_layers": 1, "heads": 2, "dropout": 0.0, "attention_dropout": 0.0},
         "mmlatch": {"units": 16, "num_layers": 1, "heads": 2, "dropout": 0.0}}


def model_cases():
    """(case id, model name, DatasetInfo, (features, labels), config) for every registered model.

    A model runs on `synthetic_av` unless it needs another input: the ResNets take one image, the HIGGS networks
    are checked on two vector modalities, each variant once; the C-LSTMs run each fusion depth, small. The sentiment
    baselines also run with the synergy regulariser (MMD and KL, both reconstruction targets).
    """
    mmd, kl = SynergyConfig().get_config(), SynergyConfig(divergence="kl", target="fused").get_config()
    special = {
        "resnet_cifar": [(f"resnet_cifar-{v}", TINY_IMAGES, tiny_images(), {"depth": 8, "variant": v,
                                                                            "augment": False})
                         for v in RESNET_VARIANTS],
        "higgs_mlp": [(f"higgs_mlp-{v}", TWO_VECTORS, two_vectors(), {"variant": v, "width": 16})
                      for v in HIGGS_VARIANTS],
        "ef_lstm": [("ef_lstm", TWO_SEQUENCES, two_sequences(), {}),
                    ("ef_lstm-synergy_mmd", TWO_SEQUENCES, two_sequences(), {"synergy": mmd})],
        "mfn": [("mfn", TWO_SEQUENCES, two_sequences(), {"units": 8, "memory": 8, "attention_hidden": 8}),
                ("mfn-synergy_kl", TWO_SEQUENCES, two_sequences(),
                 {"units": 8, "memory": 8, "attention_hidden": 8, "synergy": kl})],
        "tfn": [("tfn", datasets.info("synthetic_av"), generate(256, seed=0), {}),
                ("tfn-synergy_kl", datasets.info("synthetic_av"), generate(256, seed=0), {"synergy": kl})],
        "lmf": [("lmf", datasets.info("synthetic_av"), generate(256, seed=0), {}),
                ("lmf-synergy_mmd", datasets.info("synthetic_av"), generate(256, seed=0), {"synergy": mmd})],
        "mult": [("mult", datasets.info("synthetic_av"), generate(256, seed=0), SMALL["mult"])],
        "mmlatch": [(f"mmlatch-{feedback}_{backbone}", datasets.info("synthetic_av"), generate(256, seed=0),
                     {**SMALL["mmlatch"], "feedback": feedback, "backbone": backbone})
                    for feedback, backbone in (("lstm", "lstm"), ("lstm", "mult"))],
        "clstm_av": [(f"clstm_av-{f}", datasets.info("synthetic_av"), generate(256, seed=0),
                      {"fusion": f, "filters": 8, "hidden": 16, "max_frames": 6}) for f in CLSTM_FUSIONS],
    }
    cases = []
    for name in zoo.list_models(task="classification"):
        cases += special.get(name, [(name, datasets.info("synthetic_av"), generate(256, seed=0), {})])
    return [(case_id, case_id.split("-")[0], info, data, config) for case_id, info, data, config in
            cases + composition_cases()]


def composition_cases():
    """One model of every family with each multiplicative head, the MulMix one also with synergy (DESIGN.md: the
    head and the synergy add-on are configurations of any model); the presets with synergy."""
    av, mmd = (datasets.info("synthetic_av"), generate(256, seed=0)), SynergyConfig().get_config()
    small = {"tfn": {}, "additive_fusion": {}, "late_fusion": {},
             "mult": SMALL["mult"], "mmlatch": {**SMALL["mmlatch"], "backbone": "mult"},
             "clstm_av": {"fusion": "initial", "filters": 8, "hidden": 16, "max_frames": 6}}
    cases = []
    for name, config in small.items():
        # mmlatch's Mul head runs with MulT and synergy on mosi's binary view in test_multiplicative.py
        cases += [] if name == "mmlatch" else [(f"{name}-head_mul", *av, {**config, "head": "mul"})]
        cases.append((f"{name}-head_mulmix_synergy", *av,
                      {**config, "head": {"type": "mulmix", "width": 16}, "synergy": mmd}))
    cases += [("mfn-head_mul", TWO_SEQUENCES, two_sequences(),
               {"units": 8, "memory": 8, "attention_hidden": 8, "head": "mul"}),
              ("mul-synergy", *av, {"synergy": mmd}),
              ("higgs_mlp-mulmix_synergy", TWO_VECTORS, two_vectors(), {"variant": "mulmix", "width": 16,
                                                                         "synergy": mmd}),
              ("resnet_cifar-mul_synergy", TINY_IMAGES, tiny_images(), {"depth": 8, "variant": "mul", "augment": False,
                                                                         "synergy": mmd})]
    return cases


def run_model_test(name, dataset_info, features, labels, tmp_path, batch_size=32, steps=30, **config):
    """Checks one zoo model on numpy `features` {modality: array} and `labels`.

    - the config survives a JSON round trip and rebuilds an identical config;
    - every trainable weight gets a finite gradient, non-zero somewhere, from its group's objective;
    - `fit` for `steps` steps lowers the loss on the training batches;
    - a `.keras` file reloads with `safe_mode=True` and predicts identically;
    - the SavedModel export reloads with `tf.saved_model.load`, takes inputs named after the modalities and predicts
      the same.
    """
    keras.utils.set_random_seed(0)  # the same initial weights whatever ran before
    model = zoo.create(name, dataset_info, **config)
    model.compile(optimizer=optimizers.Adam(3e-3))  # the zoo's default class, at a rate that learns in 30 steps
    x0 = {k: v[:batch_size] for k, v in features.items()}

    config_json = json.loads(json.dumps(model.get_config()))
    assert type(model).from_config(config_json).get_config() == model.get_config()

    # An odd number of examples: the signs in an L1 loss's gradient cannot cancel exactly.
    xg, yg = {k: v[:batch_size + 1] for k, v in features.items()}, labels[:batch_size + 1]
    with tf.GradientTape(persistent=True) as tape:
        groups = model.objectives(xg, yg, model(xg, training=True, return_outputs=True))
    assert sum(len(variables) for variables, _ in groups) == len(model.trainable_variables)
    for variables, loss in groups:
        for var, grad in zip(variables, tape.gradient(loss, variables)):
            assert grad is not None, f"{name}: no gradient for {var.path}"
            assert np.all(np.isfinite(grad)), f"{name}: non-finite gradient for {var.path}"
            assert np.any(grad != 0), f"{name}: zero gradient for {var.path}"

    before = model.evaluate(features, labels, batch_size=batch_size, verbose=0, return_dict=True)["loss"]
    data = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(batch_size)
    history = model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    after = model.evaluate(features, labels, batch_size=batch_size, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(history.history["loss"][-1])
    assert after < 0.9 * before, f"{name}: training loss did not fall ({before:.4f} -> {after:.4f})"

    expected = model.predict(x0, verbose=0)
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded) is type(model)
    np.testing.assert_array_equal(reloaded.predict(x0, verbose=0), expected)

    export_dir = export_saved_model(model, os.path.join(tmp_path, "serving"), model_name=name)
    assert export_dir == os.path.join(tmp_path, "serving", name, "1")
    signatures = tf.saved_model.load(export_dir).signatures
    signature = signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(model.modality_names)
    # The export takes what a user has: a modality with a `raw` spec (a recording) as a seeded waveform.
    rng = np.random.default_rng(0)
    raw = {m.name: (x0[m.name] if m.raw is None else rng.uniform(
        -0.5, 0.5, (len(x0[m.name]), dict(m.raw)["samples"] // 2)).astype("float32")) for m in model.modalities}
    expected = model.predict(model.preprocess(raw), verbose=0)
    outputs = signature(**{k: tf.constant(v) for k, v in raw.items()})
    np.testing.assert_allclose(signatures["embed"](**{k: tf.constant(v) for k, v in raw.items()})["fused"],
                               model(model.preprocess(raw), return_outputs=True)["fused"], rtol=1e-5, atol=1e-5)
    assert os.path.getsize(os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")) > 0
    masks = model(model.preprocess(raw), return_outputs=True).get("masks")
    assert ("masks" in signatures) == (masks is not None)
    if masks is not None:
        served = signatures["masks"](**{k: tf.constant(v) for k, v in raw.items()})
        for modality, mask in masks.items():
            np.testing.assert_allclose(served[modality], mask, rtol=1e-5, atol=1e-6)
    key = "logits" if model.task.type == "classification" else "prediction"
    np.testing.assert_allclose(outputs[key].numpy(), expected, rtol=1e-5, atol=1e-5)
    if model.task.type == "classification":
        np.testing.assert_array_equal(outputs["class_id"].numpy(), expected.argmax(-1))
        np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)
    return model



def assert_front_padding_is_ignored(name, config):
    """A sequence with 3 padding steps in front predicts as its 4 real steps do in a model built for length 4."""
    features, _ = two_sequences(9)
    padded = {k: v[:3] for k, v in features.items()}  # two_sequences pads the first n // 3 rows by 3 steps
    assert all(np.all(v[:, :3] == 0) for v in padded.values())
    model = zoo.create(name, TWO_SEQUENCES, **config)
    short_info = DatasetInfo("short", [Modality(m.name, (4, m.shape[1]), kind="sequence")
                                       for m in TWO_SEQUENCES.modalities], TWO_SEQUENCES.task, {})
    short = zoo.create(name, short_info, **config)
    short.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(padded, verbose=0),
                               short.predict({k: v[:, 3:] for k, v in padded.items()}, verbose=0), atol=1e-5)
