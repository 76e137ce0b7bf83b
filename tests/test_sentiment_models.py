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
