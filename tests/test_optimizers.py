"""`zoo.optimizers`: Keras' Adam and AdamW with the fused update, against hand-computed steps and Keras' own.

Under `tf.distribute` the fused AdamW trains the synergy regulariser's C-Network in test_distribute.py and
test_multiworker.py, which compare every weight with a single device.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from multisensory import datasets, zoo
from multisensory.training.synergy import SynergyConfig
from multisensory.zoo import optimizers

RNG = np.random.default_rng(0)
WEIGHTS = [RNG.normal(size=(3, 2)).astype("float32"), RNG.normal(size=(2,)).astype("float32")]
GRADIENTS = [[RNG.normal(size=w.shape).astype("float32") for w in WEIGHTS] for _ in range(4)]


def trained(optimizer, gradients=GRADIENTS):
    """The weights after `optimizer` applied each step's gradients, traced as `fit` runs it."""
    variables = [keras.Variable(w) for w in WEIGHTS]
    optimizer.build(variables)
    step = tf.function(lambda grads: optimizer.apply(grads, variables))
    for grads in gradients:
        step([g if isinstance(g, tf.IndexedSlices) else tf.convert_to_tensor(g) for g in grads])
    return [v.numpy() for v in variables]


def test_adam_matches_hand_computed_steps():
    lr, beta_1, beta_2, epsilon = 0.05, 0.8, 0.99, 1e-3
    expected = []
    for w, g in zip(WEIGHTS, zip(*GRADIENTS)):
        w, m, v = w.astype("float64"), 0.0, 0.0
        for t, grad in enumerate(g, start=1):
            m = m + (grad - m) * (1 - beta_1)
            v = v + (grad ** 2 - v) * (1 - beta_2)
            w = w - lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(v) + epsilon)
        expected.append(w)
    got = trained(optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)
        assert np.abs(a - WEIGHTS[0 if a.ndim == 2 else 1]).max() > 0.05  # the steps moved the weights


@pytest.mark.parametrize("ours, theirs", [
    (lambda: optimizers.Adam(0.01), lambda: keras.optimizers.Adam(0.01)),
    (lambda: optimizers.AdamW(0.01, weight_decay=0.1, clipnorm=0.5),
     lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1, clipnorm=0.5)),
    (lambda: optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5)),
     lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.02, 2, 0.5))),
], ids=["adam", "adamw_clipnorm", "schedule"])
def test_matches_keras_to_rounding(ours, theirs):
    for a, b in zip(trained(ours()), trained(theirs())):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_amsgrad_and_sparse_gradients_take_keras_update():
    assert all(np.array_equal(a, b) for a, b in zip(trained(optimizers.Adam(0.01, amsgrad=True)),
                                                      trained(keras.optimizers.Adam(0.01, amsgrad=True))))
    sparse = [[tf.IndexedSlices(tf.constant(g[:1]), tf.constant([1]), tf.constant(g.shape)) for g in grads]
              for grads in GRADIENTS]
    assert all(np.array_equal(a, b) for a, b in zip(trained(optimizers.Adam(0.01), sparse),
                                                      trained(keras.optimizers.Adam(0.01), sparse)))


def count_update_ops(optimizer, n=8):
    variables = [keras.Variable(np.zeros((4, 4), "float32")) for _ in range(n)]
    optimizer.build(variables)
    graph = tf.function(lambda grads: optimizer.apply(grads, variables)).get_concrete_function(
        [tf.TensorSpec((4, 4))] * n).graph
    return len(graph.get_operations())


def test_the_fused_update_traces_a_fifth_of_the_ops():
    ours, theirs = count_update_ops(optimizers.Adam(0.01)), count_update_ops(keras.optimizers.Adam(0.01))
    assert ours * 5 < theirs, (ours, theirs)


def test_the_zoo_defaults_use_them_and_they_reload(tmp_path):
    info = datasets.info("synthetic_av")
    model = zoo.create("additive_fusion", info)
    model.compile()
    assert type(model.optimizer) is optimizers.Adam
    synergy = zoo.create("additive_fusion", info, synergy=SynergyConfig())
    synergy.compile()
    assert type(synergy.optimizer) is optimizers.AdamW and synergy.optimizer.clipvalue == 5.0
    assert type(synergy.synergy_optimizer) is optimizers.AdamW
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded.optimizer) is optimizers.Adam
    assert reloaded.optimizer.get_config() == model.optimizer.get_config()
