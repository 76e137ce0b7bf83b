"""The multiplicative combination against values computed by hand (Liu et al. 2018, eqs. 6-13)."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.training.losses import MultiplicativeLoss, class_losses, multiplicative_predict
from multisensory.zoo.multiplicative import MultiplicativeHead, mixtures
from model_harness import TWO_VECTORS, two_vectors
from multisensory.training.synergy import SynergyConfig
from sentiment_fixtures import write_mult_pickle

P1 = np.array([[0.8, 0.2], [0.3, 0.7]], "float32")
P2 = np.array([[0.6, 0.4], [0.9, 0.1]], "float32")
P3 = np.array([[0.5, 0.5], [0.2, 0.8]], "float32")
LP1, LP2, LP3 = np.log(P1), np.log(P2), np.log(P3)  # the head gives log-probabilities (log-softmax)


def test_down_weighting_and_class_losses_by_hand():
    # Two branches, beta = 1: q_1^c = 1 - p_2^c, q_2^c = 1 - p_1^c.
    expected = -np.array([[0.4 * math.log(0.8) + 0.2 * math.log(0.6), 0.6 * math.log(0.2) + 0.8 * math.log(0.4)],
                          [0.1 * math.log(0.3) + 0.7 * math.log(0.9), 0.9 * math.log(0.7) + 0.3 * math.log(0.1)]])
    np.testing.assert_allclose(class_losses([LP1, LP2], beta=1.0), expected, rtol=1e-5)
    # Three branches, beta = 0.5: q_i^c = [prod_{j != i} (1 - p_j^c)]^(0.5 / 2).
    q1 = ((1 - P2) * (1 - P3)) ** 0.25
    q2 = ((1 - P1) * (1 - P3)) ** 0.25
    q3 = ((1 - P1) * (1 - P2)) ** 0.25
    expected = -(q1 * np.log(P1) + q2 * np.log(P2) + q3 * np.log(P3))
    np.testing.assert_allclose(class_losses([LP1, LP2, LP3], beta=0.5), expected, rtol=1e-5)
    # Branch weights scale each term.
    weighted = -(0.3 * q1 * np.log(P1) + 0.3 * q2 * np.log(P2) + 1.0 * q3 * np.log(P3))
    np.testing.assert_allclose(class_losses([LP1, LP2, LP3], 0.5, [0.3, 0.3, 1.0]), weighted, rtol=1e-5)


def test_loss_is_the_true_class_loss_and_beta_zero_is_summed_cross_entropy():
    labels = np.array([0, 1])
    per_class = class_losses([LP1, LP2, LP3], beta=0.5).numpy()
    assert float(MultiplicativeLoss(beta=0.5)(labels, [LP1, LP2, LP3])) == pytest.approx(
        (per_class[0, 0] + per_class[1, 1]) / 2, rel=1e-5)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()
    summed = sum(float(cross_entropy(labels, p)) for p in (P1, P2, P3))
    assert float(MultiplicativeLoss(beta=0.0)(labels, [LP1, LP2, LP3])) == pytest.approx(summed, rel=1e-5)


def test_prediction_is_the_smallest_class_loss():
    losses = class_losses([LP1, LP2, LP3], beta=1.0).numpy()
    np.testing.assert_array_equal(multiplicative_predict([LP1, LP2, LP3], beta=1.0), losses.argmin(-1))
    # One confident branch against two that lean the other way. Averaging the probabilities picks class 1
    # ((0.99 + 0.2 + 0.2) / 3 = 0.463 for class 0). Eq. 7 with beta = 1, by hand:
    # l^0 = -(sqrt(0.8 * 0.8) log 0.99 + 2 sqrt(0.01 * 0.8) log 0.2) = 0.296,
    # l^1 = -(sqrt(0.2 * 0.2) log 0.01 + 2 sqrt(0.99 * 0.2) log 0.8) = 1.120: class 0.
    confident = np.array([[0.99, 0.01]], "float32")
    other = np.array([[0.2, 0.8]], "float32")
    log_probs = [np.log(confident), np.log(other), np.log(other)]
    np.testing.assert_allclose(class_losses(log_probs, beta=1.0), [[0.296, 1.120]], atol=2e-3)
    assert int(multiplicative_predict(log_probs, beta=1.0)[0]) == 0


def test_boosted_loss_skips_examples_classified_with_the_margin():
    labels = np.array([0, 1])
    losses = class_losses([LP1, LP2], beta=1.0).numpy()
    gap = losses[0, 1] - losses[0, 0]  # example 1: true class 0 wins by `gap`
    assert gap > 0 and losses[1, 1] > losses[1, 0]  # example 2 is misclassified
    small_margin = MultiplicativeLoss(beta=1.0, boosted=True, margin=gap / 2)
    assert float(small_margin(labels, [LP1, LP2])) == pytest.approx(losses[1, 1] / 2, rel=1e-5)
    large_margin = MultiplicativeLoss(beta=1.0, boosted=True, margin=gap * 2)
    assert float(large_margin(labels, [LP1, LP2])) == pytest.approx((losses[0, 0] + losses[1, 1]) / 2, rel=1e-5)


def test_no_gradient_flows_through_the_down_weighting_factor():
    p1, p2 = tf.Variable(P1), tf.Variable(P2)
    labels = np.array([0, 1])
    with tf.GradientTape() as tape:
        loss = MultiplicativeLoss(beta=1.0)(labels, [tf.math.log(p1), tf.math.log(p2)])
    g1 = tape.gradient(loss, p1).numpy()
    # Only -q_1^y log p_1^y depends on p_1 once q is constant: d/dp_1^y = -q_1^y / p_1^y / batch.
    q1 = 1 - P2
    expected = np.zeros_like(P1)
    expected[0, 0] = -q1[0, 0] / P1[0, 0] / 2
    expected[1, 1] = -q1[1, 1] / P1[1, 1] / 2
    np.testing.assert_allclose(g1, expected, rtol=1e-5)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_mulmix_enumerates_every_mixture(m):
    subsets = mixtures(m)
    assert len(subsets) == 2 ** m - 1 == len(set(subsets))
    head = MultiplicativeHead(num_classes=3, num_branches=m, mix=True)
    embeddings = [np.random.default_rng(k).normal(size=(5, 4)).astype("float32") for k in range(m)]
    probs = head(embeddings)
    assert len(probs) == 2 ** m - 1
    np.testing.assert_allclose(np.sum(np.exp(probs[-1]), -1), 1.0, rtol=1e-5)
    # The last predictor sees the sum of all embeddings.
    g = head.predictors[-1]
    expected = keras.ops.log_softmax(g(sum(embeddings)), axis=-1)
    np.testing.assert_allclose(probs[-1], expected, rtol=1e-5)


def test_model_predictions_follow_eq_7():
    features, labels = two_vectors(32)
    model = zoo.create("mul", TWO_VECTORS, beta=1.0)
    out = model(features, return_outputs=True)
    np.testing.assert_array_equal(np.argmax(model.predict(features, verbose=0), -1),
                                  multiplicative_predict(out["branch_log_probabilities"], beta=1.0))
    with pytest.raises(ValueError, match="compile it without `loss`"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="3 branch weights for 2 branches"):
        zoo.create("mul", TWO_VECTORS, branch_weights=[1, 1, 1])


def test_serialisation_of_the_loss():
    loss = MultiplicativeLoss(beta=0.3, boosted=True, margin=0.1, branch_weights=[0.3, 0.3, 1.0])
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.get_config() == loss.get_config()


def test_mul_and_mulmix_on_the_real_higgs_files(data_dir):
    """Short real run: both beat the low-level network clearly and match the high-level one (test AUC).

    On the 6,667 training rows available, the high-level features alone are about as good as fusion (the paper's
    gains come from millions of rows); with 500 test rows the AUC's standard error is about 0.02.
    """
    from multisensory import datasets

    def test_auc(variant, **config):
        keras.utils.set_random_seed(0)
        model = zoo.create("higgs_mlp", "higgs", variant=variant, **config)
        model.compile()
        model.fit(datasets.load("higgs", "train", data_dir=data_dir, batch_size=128), epochs=4, verbose=0)
        test = datasets.load("higgs", "test", data_dir=data_dir, batch_size=500)
        return model.evaluate(test, return_dict=True, verbose=0)["auc"]

    low, high = test_auc("base", modality="low_level"), test_auc("base", modality="high_level")
    for variant in ("mul", "mulmix"):
        auc = test_auc(variant)
        assert auc > low + 0.08, (variant, auc, low)
        assert auc > high - 0.02, (variant, auc, high)


def test_a_confidently_wrong_branch_still_gets_a_gradient():
    """log p from a log-softmax is never clipped: at p^y = e^-30 (far below a 1e-7 clip) the gradient is intact."""
    logits = tf.Variable([[30.0, 0.0]])  # class 0 with certainty; the label is 1
    other = np.log(np.array([[0.5, 0.5]], "float32"))
    with tf.GradientTape() as tape:
        loss = MultiplicativeLoss(beta=0.5)(np.array([1]), [tf.nn.log_softmax(logits), other])
    gradient = tape.gradient(loss, logits).numpy()
    # d/dz of -q log softmax(z)_1 = q (softmax(z) - e_1), q = (1 - 0.5)^0.5
    np.testing.assert_allclose(gradient, [[0.5 ** 0.5, -(0.5 ** 0.5)]], rtol=1e-4)


def test_resnet_cifar_follows_the_paper_defaults():
    info = datasets.info("cifar10")
    mul = zoo.create("resnet_cifar", info, depth=8, variant="mul", augment=False)
    mulmix = zoo.create("resnet_cifar", info, depth=8, variant="mulmix", augment=False)
    head, mix = mul.multiplicative, mulmix.multiplicative
    assert (head.beta, head.branch_weights, head.hidden, head.fused_branch) == (0.3, [0.3, 0.3, 1.0], (), False)
    assert (mix.beta, mix.branch_weights, mix.hidden, mix.width) == (0.3, None, (256,), 64)  # CIFAR's optimum
    predictors = mulmix.multiplicative_head.predictors
    assert len(predictors) == 7 and all(p.hidden == (256,) for p in predictors)


def test_the_multiplicative_head_on_a_regression_task_points_to_the_binary_view():
    with pytest.raises(ValueError, match="classification task.*binary='has0' or 'non0'"):
        zoo.create("tfn", datasets.info("mosi"), head="mul")
    with pytest.raises(ValueError, match="Unknown head 'product'; heads: plain, mul, mulmix"):
        zoo.create("tfn", "synthetic_av", head="product")
    with pytest.raises(ValueError, match=r"no setting\(s\) \['betta'\]"):
        zoo.create("tfn", "synthetic_av", head={"type": "mul", "betta": 0.3})


def test_binary_sentiment_view_and_the_design_composition(tmp_path):
    """mosi as Acc-2's 2-class task; "MulT backbone + MMLatch feedback + synergy + multiplicative head" trains."""
    import pickle

    data = write_mult_pickle(tmp_path / "mosi", length=6)
    data["train"]["labels"][:4] = 0.0
    (tmp_path / "mosi" / "mosi_data.pkl").write_bytes(pickle.dumps(data))
    scores = data["train"]["labels"].reshape(-1)
    views = (("has0", (scores >= 0).astype("int32")), ("non0", (scores[scores != 0] > 0).astype("int32")))
    for view, expected in views:
        labels = np.concatenate([y.numpy() for _, y in datasets.load(
            "mosi", "train", data_dir=str(tmp_path), batch_size=64, shuffle=False, binary=view)])
        np.testing.assert_array_equal(labels, expected)
    info = datasets.info("mosi", data_dir=str(tmp_path), binary="non0")
    assert info.task.type == "classification" and info.task.num_classes == 2
    assert info.splits["train"] == len(scores) - 4
    with pytest.raises(ValueError, match="binary must be one of"):
        datasets.load("mosi", "train", data_dir=str(tmp_path), binary="yes")

    keras.utils.set_random_seed(0)
    model = zoo.create("mmlatch", info, backbone="mult", head="mul", synergy=SynergyConfig(), units=8, num_layers=1,
                       heads=2, dropout=0.0)
    model.compile()
    train = datasets.load("mosi", "train", data_dir=str(tmp_path), batch_size=16, binary="non0")
    history = model.fit(train, epochs=1, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and {"accuracy", "auc", "synergy_l2"} <= set(history)
    assert "masks" in model(next(iter(train))[0], return_outputs=True)


def test_liu_recipes_as_the_authors_train():
    from multisensory.zoo.recipes import EpochDecay, StepDecay

    model = zoo.create("resnet_cifar", datasets.info("cifar10"), depth=8, variant="mul")
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and model.recipe_batch_size == 100
    assert (float(optimizer.learning_rate), optimizer.momentum) == pytest.approx((0.1, 0.9))
    assert not optimizer.weight_decay  # the L2 term is in the loss (the next test)
    (step,) = model.recipe(epochs=8)
    step.set_model(model)
    rates = []
    for epoch in range(8):  # 0.1 until epoch 4, 0.01 until epoch 6, then 0.001
        step.on_epoch_begin(epoch)
        rates.append(float(model.optimizer.learning_rate))
    np.testing.assert_allclose(rates, [0.1] * 4 + [0.01] * 2 + [0.001] * 2, rtol=1e-6)
    assert isinstance(step, StepDecay)

    model = zoo.create("higgs_mlp", TWO_VECTORS, variant="add", width=8)  # the authors' HIGGS scripts
    model.compile()
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and model.recipe_batch_size == 128
    assert (float(optimizer.learning_rate), optimizer.momentum, optimizer.global_clipnorm) == pytest.approx(
        (0.01, 0.9, 10.0))
    assert not optimizer.weight_decay
    (decay,) = model.recipe(epochs=8)
    assert isinstance(decay, EpochDecay)
    decay.set_model(model)
    decay.on_epoch_begin(3)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.99 ** 3)

    adam = zoo.create("higgs_mlp", TWO_VECTORS, variant="add", width=8, recipe=None)
    adam.compile()
    assert isinstance(adam.optimizer, keras.optimizers.Adam) and adam.recipe(epochs=8) == []
    with pytest.raises(ValueError, match="Unknown recipe 'liu'; recipes: liu_cifar, liu_higgs, mmlatch"):
        zoo.create("mul", TWO_VECTORS, recipe="liu")


@pytest.mark.parametrize("name,config,recipe", [("higgs_mlp", {"variant": "add", "width": 8}, "liu_higgs"),
                                                ("resnet_cifar", {"depth": 8, "variant": "base", "augment": False},
                                                 "liu_cifar")])
def test_liu_l2_is_a_loss_term_on_the_kernels_that_passes_through_the_momentum(name, config, recipe, monkeypatch):
    """Two SGD steps by hand: v <- 0.9 v - lr (g + l2 W) on every kernel, biases and batch norm undecayed. Keras'
    decoupled `weight_decay` would give the same first step and a different second one. The recipe's coefficient
    (2e-5, 2e-4) is raised to 0.05 so that its share of a step stands far above float32 rounding."""
    from multisensory.zoo import recipes

    assert recipes.RECIPES[recipe].l2 == {"liu_higgs": 2e-5, "liu_cifar": 2e-4}[recipe]
    l2 = 0.05
    monkeypatch.setitem(recipes.RECIPES, recipe, dataclasses.replace(recipes.RECIPES[recipe], l2=l2))
    if name == "resnet_cifar":
        info = datasets.info("cifar10")
        x = {"image": np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")}
        y = np.array([0, 1, 2, 3])
    else:
        info, (x, y) = TWO_VECTORS, two_vectors(16)
    keras.utils.set_random_seed(0)
    model = zoo.create(name, info, **config)
    model.compile()
    model.train_on_batch(x, y)  # builds everything; the hand computation starts from here
    model.optimizer.momentum = 0.9
    kernels = {id(v) for v in model.trainable_variables if v.path.endswith("/kernel")}
    assert kernels and len(kernels) < len(model.trainable_variables)

    def task_gradients():
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
        return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

    def l2_of(v):
        return l2 * v.numpy() if id(v) in kernels else 0.0

    lr = float(model.optimizer.learning_rate)
    velocities = [np.asarray(model.optimizer.momentums[model.optimizer._get_variable_index(v)])
                  for v in model.trainable_variables]
    expected = [v.numpy() for v in model.trainable_variables]
    for _ in range(2):
        before = [v.numpy() for v in model.trainable_variables]
        grads = [g + l2_of(v) for g, v in zip(task_gradients(), model.trainable_variables)]
        if model.optimizer.global_clipnorm:  # HIGGS' clipping at 10 is not reached in this check
            assert np.sqrt(sum(float(np.sum(g ** 2)) for g in grads)) < model.optimizer.global_clipnorm
        velocities = [0.9 * m - lr * g for m, g in zip(velocities, grads)]
        expected = [w + m for w, m in zip(before, velocities)]
        model.train_on_batch(x, y)
        for v, e, w in zip(model.trainable_variables, expected, before):
            np.testing.assert_allclose(v.numpy() - w, e - w, rtol=2e-4, atol=1e-7)


def test_each_branch_term_is_logged_and_they_sum_to_the_loss():
    x, y = two_vectors(32)
    model = zoo.create("mulmix", TWO_VECTORS, width=8, head_hidden=(8,), beta=0.5)
    model.compile()
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    branches = [logs[f"branch_{name}_loss"] for name in ("0", "1", "0_1")]
    assert sum(branches) == pytest.approx(logs["loss"], rel=1e-5)
