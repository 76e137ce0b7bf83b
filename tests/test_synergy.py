"""The synergy regulariser: its measures against hand-computed values, the C-Network's parts, and the two-optimiser
training step (which weights learn from which objective; the exported model leaves the C-Network out)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.datasets.synthetic_av import generate
from multisensory.exports import export_saved_model
from multisensory.zoo import recurrent
from multisensory.training.cortical_network import AffineCoupling, CNetwork, Critic
from model_harness import SMALL, TWO_SEQUENCES
from sentiment_fixtures import write_mult_pickle
from multisensory.training.synergy import (SynergyConfig, batch_covariance, clip_rows, donsker_varadhan, kurtosis,
                                           mmd, regularised_kurtosis)

def test_mmd_of_identical_samples_is_about_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    same = float(mmd(x, y))
    shifts = [float(mmd(x, y + delta)) for delta in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.01
    assert same < shifts[0] < shifts[1] < shifts[2]
    assert float(mmd(x, x + 1.0, bandwidth=[0.5, 1.0, 2.0])) > 0.1


def test_mmd_by_hand_on_two_points_each():
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0]])
    k = lambda d2: np.exp(-d2 / 2.0)  # sigma = 1
    expected = k(1.0) + k(1.0) - 2 * np.mean([k(9.0), k(16.0), k(4.0), k(9.0)])
    assert float(mmd(x, y, bandwidth=1.0)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("p", [1, 3, 6])
def test_kurtosis_of_a_gaussian_is_p_times_p_plus_2(p):
    z = tf.random.stateless_normal((100_000, p), [0, p]) @ tf.constant(np.eye(p) + 0.3, tf.float32)
    assert float(kurtosis(z)) == pytest.approx(p * (p + 2), rel=0.03)


def test_kurtosis_by_hand():
    # Two points in 1-D: each is one standard deviation from the mean, so the kurtosis is 1.
    assert float(kurtosis(np.array([[1.0], [3.0]]))) == pytest.approx(1.0, rel=1e-5)


def test_regularised_kurtosis_by_hand():
    z = np.array([[1.0], [3.0]])  # differences -1 and +1 from the mean
    one = np.ones((1, 1), "float32")
    assert float(regularised_kurtosis(z, one)) == pytest.approx(1.0)
    assert float(regularised_kurtosis(z, one, max_norm=0.5)) == pytest.approx(0.25 ** 2)  # clipped to +-0.5
    assert float(regularised_kurtosis(z, one, ridge=1.0)) == pytest.approx(0.5 ** 2)  # (1 / (1 + 1))^2
    np.testing.assert_allclose(clip_rows(np.array([[3.0, 4.0], [0.3, 0.4]]), 1.0), [[0.6, 0.8], [0.3, 0.4]])


def _gaussians(n, seed, shift):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) + shift).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def test_donsker_varadhan_bounds_the_kl_of_two_gaussians():
    # P = N(mu, I), Q = N(0, I): KL(P || Q) = |mu|^2 / 2, reached by T = log dP/dQ = mu . x (+ any constant).
    mu = np.array([1.0, 0.5], "float32")
    kl = float(mu @ mu / 2)
    p, q = _gaussians(200_000, 0, mu)
    assert float(donsker_varadhan(p @ mu + 3.0, q @ mu + 3.0)) == pytest.approx(kl, abs=0.02)
    for critic in (0.5 * mu, 1.5 * mu, np.array([1.0, -0.5], "float32")):
        assert float(donsker_varadhan(p @ critic, q @ critic)) < kl


def test_a_trained_critic_approaches_the_kl_by_descending_its_reversed_gradient():
    mu = np.array([1.0, 0.5], "float32")
    kl = float(mu @ mu / 2)
    keras.utils.set_random_seed(0)
    critic = Critic(hidden=16)
    critic.build((None, 2))
    optimizer = keras.optimizers.Adam(1e-2)
    for step in range(300):
        p, q = _gaussians(512, step + 1, mu)
        with tf.GradientTape() as tape:
            bound = donsker_varadhan(critic(p), critic(q))  # minimised: the critic's weights ascend it
        optimizer.apply(tape.gradient(bound, critic.trainable_variables), critic.trainable_variables)
    p, q = _gaussians(100_000, 0, mu)
    estimate = float(donsker_varadhan(critic(p), critic(q)))
    assert kl - 0.08 < estimate < kl + 0.02


def test_affine_coupling_is_invertible():
    layer = AffineCoupling(hidden=8)
    u = np.random.default_rng(0).normal(size=(5, 7)).astype("float32")
    v = layer(u)
    np.testing.assert_allclose(v[:, 4:], u[:, :3])  # the conditioning half passes through, swapped to the back
    np.testing.assert_allclose(layer.inverse(v), u, atol=1e-5)


def _cnetwork(**config):
    keras.utils.set_random_seed(0)
    network = CNetwork(SynergyConfig(**config), ["a", "b"])
    network.build({"a": (None, 3), "b": (None, 4)}, (None, 40))
    return network


def test_moving_average_covariance_is_bias_corrected_state():
    network = _cnetwork(decay=0.9, gamma_kappa=1.0, max_norm=None, ridge=0.0, kurtosis_dim=32)
    rng = np.random.default_rng(0)
    batches = [{"a": rng.normal(size=(64, 3)).astype("float32"), "b": rng.normal(size=(64, 4)).astype("float32"),
                "fused": rng.normal(size=(64, 40)).astype("float32")} for _ in range(2)]
    assert not network.covariances["a"].trainable and set(network.kurtosis_projections) == {"fused"}
    first = network({k: batches[0][k] for k in "ab"}, batches[0]["fused"], training=True)
    # After one update the bias-corrected average is the batch covariance: the plain kurtosis.
    projected = network.kurtosis_projections["fused"](batches[0]["fused"])
    expected = sum(float(kurtosis(batches[0][k])) for k in "ab") + float(kurtosis(projected))
    assert float(first["kurtosis"]) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(network.covariances["a"], 0.1 * batch_covariance(batches[0]["a"]), rtol=1e-5)
    network({k: batches[1][k] for k in "ab"}, batches[1]["fused"], training=True)
    np.testing.assert_allclose(network.covariances["a"], 0.9 * 0.1 * batch_covariance(batches[0]["a"])
                               + 0.1 * batch_covariance(batches[1]["a"]), rtol=1e-5)
    assert float(network.updates) == 2.0
    network({k: batches[1][k] for k in "ab"}, batches[1]["fused"], training=False)  # evaluation leaves the state
    assert float(network.updates) == 2.0


def test_covariance_update_takes_the_clipped_difference_vectors_by_hand():
    """Appendix D: the Z_diff entering S are clipped to the maximum norm. Rows of norm 5 clipped to 1 give S = 1/25
    of the unclipped covariance."""
    network = _cnetwork(decay=0.5, gamma_kappa=1.0, max_norm=1.0, ridge=1e-3, kurtosis_dim=32)
    a = np.array([[3.0, 4.0, 0.0], [-3.0, -4.0, 0.0]], "float32")  # centred rows of norm 5
    b = np.array([[0.0, 0.0, 0.0, 0.6], [0.0, 0.0, 0.0, -0.6]], "float32")  # norm 0.6, left as they are
    network({"a": a, "b": b}, np.ones((2, 40), "float32"), training=True)
    by_hand = 0.5 * np.outer([0.6, 0.8, 0.0], [0.6, 0.8, 0.0])  # (1 - alpha) * (1/N) sum d d^T, d = +-(0.6, 0.8, 0)
    np.testing.assert_allclose(network.covariances["a"], by_hand, atol=1e-6)
    np.testing.assert_allclose(network.covariances["b"], 0.5 * np.diag([0, 0, 0, 0.36]), atol=1e-6)
    with pytest.raises(ValueError, match="at most one of clipvalue and clipnorm"):
        SynergyConfig(clipvalue=5.0, clipnorm=5.0)
    assert SynergyConfig(clipnorm=5.0).clipping == {"clipnorm": 5.0}  # configurations saved before keep theirs


def test_reconstruction_targets_and_divergences():
    z = {"a": np.ones((6, 3), "float32"), "b": np.zeros((6, 4), "float32")}
    fused = np.full((6, 40), 2.0, "float32")
    unimodal = _cnetwork()
    assert unimodal.reconstructions["a"].output_shape == (None, 3)
    # Q_i is the paper's four-layer LeakyReLU network: three hidden layers of `hidden`, a linear output.
    dense = unimodal.reconstructions["a"].layers
    assert [d.units for d in dense] == [32, 32, 32, 3]
    assert [d.activation.__name__ for d in dense] == ["leaky_relu"] * 3 + ["linear"]
    x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    h = x
    for d in dense[:3]:
        h = h @ d.kernel.numpy() + d.bias.numpy()
        h = np.where(h > 0, h, 0.2 * h)  # Keras' leaky_relu slope
    np.testing.assert_allclose(unimodal.reconstructions["a"](x), h @ dense[3].kernel.numpy() + dense[3].bias.numpy(),
                               rtol=1e-5, atol=1e-6)
    by_hand = sum(np.mean(np.sum((unimodal.reconstructions[m](z[o]) - z[m]) ** 2, -1)) for m, o in (("a", "b"),
                                                                                                    ("b", "a")))
    assert float(unimodal.reconstruction(z, fused)) == pytest.approx(float(by_hand), rel=1e-5)
    to_fused = _cnetwork(target="fused")
    assert to_fused.reconstructions["a"].output_shape == (None, 40)
    assert set(_cnetwork(divergence="kl").critics) == {"a", "b"} and not unimodal.critics
    with pytest.raises(ValueError, match="Unknown divergence 'js'.*'mmd', 'kl'"):
        SynergyConfig(divergence="js")
    with pytest.raises(ValueError, match="at least two modalities"):
        CNetwork(SynergyConfig(), ["a"])


def _grads(tape, loss, variables):
    return [np.zeros(v.shape) if g is None else np.asarray(g) for g, v in
            zip(tape.gradient(loss, variables), variables)]


def test_two_optimiser_step_updates_each_group_from_its_own_objective():
    """One step with SGD for both groups: the C-Network moves by -lr * grad L_reg (the critics by +lr * grad of the
    bound), the model by -lr * grad (L_task + beta L_reg); the task loss alone never reaches the C-Network."""
    features, labels = generate(32, seed=0)
    beta, lr = 0.3, 0.1
    keras.utils.set_random_seed(0)
    model = zoo.create("lmf", "synthetic_av", synergy=SynergyConfig(beta=beta, divergence="kl"))
    model.compile(optimizer=keras.optimizers.SGD(lr))
    model.synergy_optimizer = keras.optimizers.SGD(lr)
    model_variables, cnetwork_variables = model.variable_groups()
    assert cnetwork_variables and len(model_variables) + len(cnetwork_variables) == len(model.trainable_variables)

    with tf.GradientTape(persistent=True) as tape:
        outputs = model(features, training=False, return_outputs=True)
        task = sum(model.loss_terms(features, labels, outputs).values())
        terms = model.cnetwork(outputs["unimodal"], outputs["fused"], training=False)
        regulariser = model.cnetwork.regulariser(terms)
    assert all(g is None for g in tape.gradient(task, cnetwork_variables))
    expected_model = [t + beta * r for t, r in zip(_grads(tape, task, model_variables),
                                                   _grads(tape, regulariser, model_variables))]
    expected_cnetwork = _grads(tape, regulariser, cnetwork_variables)
    critic_w2 = model.cnetwork.critics["image"].w2
    with tf.GradientTape() as plain:  # the bound's ordinary gradient for the critic's last weight
        p, q = model.cnetwork.alignments["image"](outputs["unimodal"]["image"], outputs["fused"])
        h_p, h_q = (tf.nn.relu(u @ model.cnetwork.critics["image"].w1 + model.cnetwork.critics["image"].b1)
                    for u in (p, q))
        bound = donsker_varadhan(h_p @ critic_w2, h_q @ critic_w2)
    ascent = plain.gradient(bound, critic_w2).numpy()

    before = [np.array(v) for v in model_variables + cnetwork_variables]
    model.fit(features, labels, batch_size=32, epochs=1, shuffle=False, verbose=0)
    after = [np.array(v) for v in model_variables + cnetwork_variables]
    for b, a, g in zip(before, after, expected_model + expected_cnetwork):
        np.testing.assert_allclose(a, b - lr * g, rtol=1e-4, atol=1e-6)
    index = [v is critic_w2 for v in cnetwork_variables].index(True)
    np.testing.assert_allclose(after[len(model_variables) + index], before[len(model_variables) + index]
                               + lr * model.synergy.gamma_d * ascent, rtol=1e-4, atol=1e-6)


def test_terms_are_logged_the_export_leaves_the_cnetwork_out_and_a_backup_restores_it(tmp_path):
    features, labels = generate(64, seed=1)
    keras.utils.set_random_seed(0)
    model = zoo.create("tfn", "synthetic_av", synergy=SynergyConfig())
    base = zoo.create("tfn", "synthetic_av")
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.AdamW) and model.optimizer.clipvalue == 5.0  # Appendix C
    assert model.synergy_optimizer.clipvalue == 5.0 and model.optimizer.clipnorm is None
    history = model.fit(features, labels, batch_size=32, epochs=2, verbose=0)
    assert {"loss", "synergy_l2", "synergy_divergence", "synergy_kurtosis"} <= set(history.history)
    assert model.count_params() > base.count_params()

    path = export_saved_model(model, str(tmp_path), "tfn")
    saved = tf.train.list_variables(os.path.join(path, "variables", "variables"))
    # the model's weights and, for the exports' fused LSTM kernel, a copy of each LSTM's [K; R]; no C-network
    stacked = sum(int(np.prod(layer.cell.kernel.shape)) + int(np.prod(layer.cell.recurrent_kernel.shape))
                  for layer in model._flatten_layers() if isinstance(layer, recurrent.FastLSTM))
    assert stacked > 0
    assert sum(int(np.prod(shape)) for name, shape in saved if "OBJECT_GRAPH" not in name) == (
        base.count_params() + stacked)
    serving = tf.saved_model.load(path).signatures["serving_default"]
    x = {k: v[:8] for k, v in features.items()}
    np.testing.assert_allclose(serving(**{k: tf.constant(v) for k, v in x.items()})["logits"],
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)

    # What an interrupted run restores (BackupAndRestore saves weights): both optimisers and the covariance state.
    model.save_weights(str(tmp_path / "backup.weights.h5"))
    restored = zoo.create("tfn", "synthetic_av", synergy=SynergyConfig())
    restored.compile()
    restored.load_weights(str(tmp_path / "backup.weights.h5"))
    for a, b in ((model.optimizer, restored.optimizer), (model.synergy_optimizer, restored.synergy_optimizer)):
        assert int(b.iterations) == int(a.iterations) == 4
        assert all(np.array_equal(u, v) for u, v in zip(a.variables, b.variables))
    np.testing.assert_array_equal(restored.cnetwork.covariances["fused"], model.cnetwork.covariances["fused"])


def test_synergy_is_a_configuration_of_the_zoo():
    model = zoo.create("ef_lstm", TWO_SEQUENCES, synergy={"divergence": "kl"})
    assert model.synergy == SynergyConfig(divergence="kl")
    assert "synergy" in zoo.config_keys("mfn")
    clone = type(model).from_config(model.get_config())
    assert clone.synergy == model.synergy


@pytest.mark.parametrize("name", ["tfn", "mfn"])
def test_sentiment_baselines_train_with_synergy_on_the_mosi_format(name, tmp_path):
    """(test_sentiment.py trains ef_lstm, tfn and lmf on this format without synergy, test_cli.py's study trains
    lmf with and without it; ef_lstm and mfn train with and without it on aligned sequences in the shared harness.)"""
    write_mult_pickle(tmp_path / "mosi", length=8)
    info = datasets.info("mosi", data_dir=str(tmp_path))
    data = datasets.load("mosi", "train", data_dir=str(tmp_path), batch_size=8)
    keras.utils.set_random_seed(0)
    model = zoo.create(name, info, hidden=(16,), synergy=SynergyConfig(divergence="kl"))
    model.compile()
    history = model.fit(data, epochs=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert {"mae", "acc2_non0", "acc7", "synergy_l2", "synergy_divergence", "synergy_kurtosis"} <= set(history)
    assert history["synergy_l2"][-1] < history["synergy_l2"][0]


def test_mmd_of_a_single_example_is_zero_with_a_finite_gradient():
    x, y = tf.constant([[0.5, 1.0]]), tf.constant([[2.0, -1.0], [0.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = mmd(x, y)
    assert float(value) == 0.0
    assert np.all(np.isfinite(tape.gradient(value, x)))
    assert float(mmd(tf.zeros((1, 2)), tf.zeros((1, 2)))) == 0.0  # one point each, all equal: no 0 / 0 bandwidth


@pytest.mark.parametrize("divergence,target", [("mmd", "unimodal"), ("kl", "fused")])
def test_a_final_batch_of_one_example_leaves_every_weight_finite(divergence, target):
    x, y = generate(7, seed=0)  # batches of 3, 3 and 1
    model = zoo.create("lmf", "synthetic_av", synergy=SynergyConfig(divergence=divergence, target=target))
    model.compile()
    history = model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert np.all(np.isfinite(model.predict(x, verbose=0)))


BASES = {"ef_lstm": (TWO_SEQUENCES, {}), "mfn": (TWO_SEQUENCES, {"units": 8, "memory": 8, "attention_hidden": 8}),
         "tfn": ("synthetic_av", {}), "lmf": ("synthetic_av", {}), "mult": ("synthetic_av", SMALL["mult"]),
         "mmlatch": ("synthetic_av", SMALL["mmlatch"])}


@pytest.mark.parametrize("name", sorted(BASES))
def test_every_synergy_term_sends_a_gradient_into_the_model(name):
    info, config = BASES[name]
    keras.utils.set_random_seed(0)
    model = zoo.create(name, info, synergy=SynergyConfig(), **config)
    info = datasets.info(info) if isinstance(info, str) else info
    x = {m.name: tf.random.stateless_normal((16,) + tuple(4 if d is None else d for d in m.shape), [0, k])
         for k, m in enumerate(info.modalities)}
    model_variables = model.variable_groups()[0]
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(x, training=True, return_outputs=True)
        terms = model.cnetwork(outputs["unimodal"], outputs["fused"], training=False)
    for term, value in terms.items():
        gradients = [g for g in tape.gradient(value, model_variables) if g is not None]
        total = sum(float(tf.reduce_sum(tf.abs(g))) for g in gradients)
        assert np.isfinite(total) and total > 0, f"{name}: synergy term '{term}' sends no gradient into the model"
