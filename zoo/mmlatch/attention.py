"""Dot-product attention layers of MMLatch (Paraskevopoulos, Georgiou & Potamianos 2022, section 2).

- `SelfAttention`: r = softmax(Q K^T / sqrt(d)) V over one sequence, with learned projections of size d.
- `CrossModalAttention`: a_kl = softmax(K_l^T Q_k / sqrt(d)) V_l + r_k: the queries come from modality k, keys and
  values from modality l; the residual keeps k's sequence (so a_kl has k's length and size d).
- `SymmetricAttention`: m_kl = a_kl + a_lk with eq. 1's projections per modality (six matrices, as in the authors'
  code): one `CrossModalAttention` per direction, so a_kl has its own W^Q (k's queries) and W^K, W^V (l's keys and
  values) and a_lk the other three; both sequences must have one length.

Padding steps (masks from `padding_mask`) are never attended to: their scores are set to -inf before the softmax.
"""

import math

import keras
from keras import layers, ops


def attend(query, key, value, key_mask):
    """softmax(query key^T / sqrt(d)) value, with keys where `key_mask` is False excluded.

    Over a single key step the softmax is 1 whatever the score (`sequences.single_step_note`): the value is returned
    without computing it.
    """
    if key.shape[1] == 1:
        return ops.broadcast_to(value, (ops.shape(query)[0], ops.shape(query)[1], value.shape[-1]))
    scores = ops.matmul(query, ops.transpose(key, (0, 2, 1))) / math.sqrt(query.shape[-1])
    # a masked score: -1e9, or float16's -6e4 (-1e9 would be -inf there, and a row of them NaN)
    scores = ops.where(key_mask[:, None, :], scores, -6e4 if scores.dtype == "float16" else -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


@keras.saving.register_keras_serializable(package="multisensory")
class SelfAttention(layers.Layer):
    """softmax(Q K^T / sqrt(d)) V of a sequence with projections of size `units`.

    Args:
        units: int. d, the size of the projections and the output.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True  # masks are passed explicitly
        self.query, self.key, self.value = (layers.Dense(units, use_bias=False, name=n) for n in ("query", "key",
                                                                                                   "value"))

    def build(self, x_shape):
        for projection in (self.query, self.key, self.value):
            projection.build(x_shape)

    def call(self, x, mask):
        return attend(self.query(x), self.key(x), self.value(x), mask)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="multisensory")
class CrossModalAttention(SelfAttention):
    """a_kl = softmax(K_l^T Q_k / sqrt(d)) V_l + r_k; `call(r_k, r_l, mask_l)` (r_k of size `units`)."""

    def build(self, r_k_shape, r_l_shape):
        self.query.build(r_k_shape)
        self.key.build(r_l_shape)
        self.value.build(r_l_shape)

    def call(self, r_k, r_l, mask_l):
        return attend(self.query(r_k), self.key(r_l), self.value(r_l), mask_l) + r_k


@keras.saving.register_keras_serializable(package="multisensory")
class SymmetricAttention(layers.Layer):
    """m_kl = a_kl + a_lk with per-modality projections (eq. 1); `call(r_k, r_l, mask_k, mask_l)`.

    Args:
        units: int. d, the size of the projections and the output.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True  # masks are passed explicitly; the output carries none (`compute_mask`)
        self.k_to_l = CrossModalAttention(units, name="k_to_l")  # a_kl: Q_k, K_l, V_l
        self.l_to_k = CrossModalAttention(units, name="l_to_k")  # a_lk: Q_l, K_k, V_k

    def build(self, r_k_shape, r_l_shape):
        self.k_to_l.build(r_k_shape, r_l_shape)
        self.l_to_k.build(r_l_shape, r_k_shape)

    def call(self, r_k, r_l, mask_k, mask_l):
        return self.k_to_l(r_k, r_l, mask_l) + self.l_to_k(r_l, r_k, mask_k)

    def compute_mask(self, *args, **kwargs):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}
