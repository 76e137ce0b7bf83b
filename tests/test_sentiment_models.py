"""Tensor fusion, low-rank fusion and the synergy measures against values computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from multisensory.training.synergy import kurtosis, mmd
from multisensory.zoo.sentiment import LowRankFusion, TensorFusion


def test_tensor_fusion_size_and_values():
    za, zv, zt = (np.array([[2.0, 3.0]]), np.array([[5.0]]), np.array([[7.0, 11.0, 13.0]]))
    fused = TensorFusion()([za, zv, zt]).numpy()
    assert fused.shape == (1, (2 + 1) * (1 + 1) * (3 + 1))
    expected = np.einsum("a,v,t->avt", [2.0, 3.0, 1.0], [5.0, 1.0], [7.0, 11.0, 13.0, 1.0]).reshape(-1)
    np.testing.assert_allclose(fused[0], expected)
    assert fused[0, -1] == 1.0 and fused[0, 0] == 2.0 * 5.0 * 7.0  # the constant and a trimodal product


def test_low_rank_fusion_is_tfn_followed_by_the_summed_factor_tensor():
    rng = np.random.default_rng(0)
    z = [rng.normal(size=(4, d)).astype("float32") for d in (2, 3, 1)]
    layer = LowRankFusion(units=5, rank=3)
    low_rank = layer(z).numpy()
    a, v, t = (f.numpy() for f in layer.factors)  # (rank, d_m + 1, units) each
    weight = np.einsum("kah,kvh,kth->avth", a, v, t).reshape(-1, 5)  # sum over k of outer products
    tensor = TensorFusion()(z).numpy()
    np.testing.assert_allclose(low_rank, tensor @ weight + layer.bias.numpy(), rtol=1e-4, atol=1e-5)


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


@pytest.mark.parametrize("name", ["ef_lstm", "mfn", "tfn", "lmf"])
def test_front_padding_is_ignored(name):
    """A sequence with 3 padding steps in front predicts as its 4 real steps do in a model built for length 4."""
    from multisensory import zoo
    from multisensory.datasets import DatasetInfo, Modality
    from model_harness import TWO_SEQUENCES, two_sequences

    features, _ = two_sequences(9)
    padded = {k: v[:3] for k, v in features.items()}  # two_sequences pads the first n // 3 rows by 3 steps
    assert all(np.all(v[:, :3] == 0) for v in padded.values())
    config = {"units": 8, "memory": 8} if name == "mfn" else {}
    model = zoo.create(name, TWO_SEQUENCES, **config)
    short_info = DatasetInfo("short", [Modality(m.name, (4, m.shape[1]), kind="sequence")
                                       for m in TWO_SEQUENCES.modalities], TWO_SEQUENCES.task, {})
    short = zoo.create(name, short_info, **config)
    short.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(padded, verbose=0),
                               short.predict({k: v[:, 3:] for k, v in padded.items()}, verbose=0), atol=1e-5)
