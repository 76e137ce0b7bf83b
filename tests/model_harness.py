"""The test every zoo model goes through: config round trip, training, gradients, `.keras` and SavedModel exports."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from multisensory import zoo
from multisensory.exports import export_saved_model


def run_model_test(name, dataset_info, features, labels, tmp_path, batch_size=32, steps=30, **config):
    """Checks one zoo model on numpy `features` {modality: array} and `labels`.

    - the config survives a JSON round trip and rebuilds an identical config;
    - every trainable weight gets a finite gradient, non-zero somewhere;
    - `fit` for `steps` steps lowers the loss on the training batches;
    - a `.keras` file reloads with `safe_mode=True` and predicts identically;
    - the SavedModel export reloads with `tf.saved_model.load`, takes inputs named after the modalities and predicts
      the same.
    """
    model = zoo.create(name, dataset_info, **config)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x0, y0 = {k: v[:batch_size] for k, v in features.items()}, labels[:batch_size]

    config_json = json.loads(json.dumps(model.get_config()))
    assert type(model).from_config(config_json).get_config() == model.get_config()

    # An odd number of examples: the signs in an L1 loss's gradient cannot cancel exactly.
    xg, yg = {k: v[:batch_size + 1] for k, v in features.items()}, labels[:batch_size + 1]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=xg, y=yg, y_pred=model(xg, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad in zip(model.trainable_variables, grads):
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
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(model.modality_names)
    outputs = signature(**{k: tf.constant(v) for k, v in x0.items()})
    key = "logits" if model.task.type == "classification" else "prediction"
    np.testing.assert_allclose(outputs[key].numpy(), expected, rtol=1e-5, atol=1e-5)
    if model.task.type == "classification":
        np.testing.assert_array_equal(outputs["class_id"].numpy(), expected.argmax(-1))
        np.testing.assert_allclose(outputs["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)
    return model

