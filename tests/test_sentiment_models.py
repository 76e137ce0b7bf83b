"""Tensor fusion and low-rank fusion against values computed by hand; the sentiment baselines on padded input."""

import numpy as np
import pytest

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


@pytest.mark.parametrize("name", ["ef_lstm", "mfn", "tfn", "lmf"])
def test_front_padding_is_ignored(name):
    from model_harness import assert_front_padding_is_ignored

    assert_front_padding_is_ignored(name, {"units": 8, "memory": 8} if name == "mfn" else {})
