"""Tensor fusion and its low-rank form.

- `TensorFusion` (Zadeh et al. 2017, "Tensor Fusion Network for Multimodal Sentiment Analysis", eq. 1): the outer
  product of [Z_1; 1], ..., [Z_M; 1], flattened: a vector of size prod_m (d_m + 1) holding every unimodal,
  bimodal and trimodal product of features.
- `LowRankFusion` (Liu et al. 2018, "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors", eqs. 5-6):
  h = sum_{k=1}^{r} prod_m ([Z_m; 1] W_m^(k)) + b, with modality factors W_m^(k) of shape (d_m + 1, d_h). This is
  exactly a linear layer on `TensorFusion`'s output whose weight tensor is W = sum_k W_1^(k) (x) ... (x) W_M^(k)
  (outer product over the input axes, shared output axis), computed without ever forming the tensor.
"""

import keras
from keras import ops


def _with_one(z):
    return ops.concatenate([z, ops.ones_like(z[:, :1])], axis=-1)


@keras.saving.register_keras_serializable(package="multisensory")
class TensorFusion(keras.layers.Layer):
    """Flattened outer product of [Z_m; 1] over a list of (batch, d_m) tensors."""

    def call(self, embeddings):
        fused = _with_one(embeddings[0])
        for z in embeddings[1:]:
            fused = ops.reshape(fused[:, :, None] * _with_one(z)[:, None, :], (ops.shape(z)[0], -1))
        return fused


@keras.saving.register_keras_serializable(package="multisensory")
class LowRankFusion(keras.layers.Layer):
    """h = sum_k prod_m ([Z_m; 1] W_m^(k)) + b over a list of (batch, d_m) tensors -> (batch, units).

    Args:
        units: int. d_h, the size of the fused representation.
        rank: int. r, the number of factors per modality.
    """

    def __init__(self, units, rank=4, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rank = units, rank

    def build(self, embeddings_shape):
        self.factors = [self.add_weight((self.rank, shape[-1] + 1, self.units), initializer="glorot_uniform",
                                        name=f"factor_{m}") for m, shape in enumerate(embeddings_shape)]
        self.bias = self.add_weight((self.units,), initializer="zeros", name="bias")

    def call(self, embeddings):
        product = None
        for z, factor in zip(embeddings, self.factors):
            projected = ops.einsum("bd,rdh->brh", _with_one(z), factor)  # (batch, rank, units)
            product = projected if product is None else product * projected
        return ops.sum(product, axis=1) + self.bias

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rank": self.rank}
