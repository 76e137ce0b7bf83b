"""`LatchCore`: MMLatch's bottom-up network, its cross-modal attention baseline (Paraskevopoulos, Georgiou &
Potamianos 2022, "MMLatch: Bottom-up Top-down Fusion for Multimodal Sentiment Analysis", sections 2-3).

- Unimodal encoders: a bidirectional LSTM (forward and backward outputs summed) followed by dot-product
  self-attention gives r_k (batch, T, d) for every modality k.
- Cross-modal fusion: m_kl = a_kl + a_lk for every pair (`SymmetricAttention`, with eq. 1's projections per
  modality); with three modalities also a_(pair)(anchor) = cross-modal attention with queries m_pair and
  keys/values r_anchor, where the anchor is `text` when present (the paper's a_AVT with inputs m_AV and r_T; the
  query side is this implementation's choice) and otherwise the first modality, and the pair is the other two.
  o = r_1 || ... || r_M || a_(pair)(anchor) || m_kl ... (7d for three modalities) -> BiLSTM -> last states, the
  forward and backward ones summed (size d). The paper makes every LSTM bidirectional; the fusion LSTM is too.
Every modality must have the same length (`MMLatch` resamples unaligned ones); padding steps are masked.
"""

import itertools

import keras
from keras import layers, ops

from .. import recurrent
from .attention import CrossModalAttention, SelfAttention, SymmetricAttention
from .sequences import masked_mean


@keras.saving.register_keras_serializable(package="multisensory")
class UnimodalEncoder(layers.Layer):
    """BiLSTM(units, outputs summed) then `SelfAttention(units)`: (batch, T, D) -> r (batch, T, units)."""

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.lstm = recurrent.Bidirectional(recurrent.LSTM(units, return_sequences=True, dropout=dropout),
                                            merge_mode="sum")
        self.attention = SelfAttention(units, name="self_attention")

    def build(self, x_shape):
        self.lstm.build(x_shape)
        self.attention.build(tuple(x_shape[:-1]) + (self.units,))

    def call(self, x, mask, training=None):
        return self.attention(self.lstm(x, mask=mask, training=training), mask)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="multisensory")
class LatchCore(layers.Layer):
    """Encoders and cross-modal fusion; `call(sequences, masks)` -> {"sequences": r, "unimodal", "fused"}.

    Args:
        modality_names: the modalities, in order.
        units: int. d, the size of the encoders, the attention projections and the fusion LSTM (paper: 100).
        dropout: float. Dropout of the LSTM inputs (paper: 0.2).
    """

    def __init__(self, modality_names, units=100, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.modality_names, self.units, self.dropout = tuple(modality_names), units, dropout
        names = self.modality_names
        self.encoders = {m: UnimodalEncoder(units, dropout, name=f"{m}_encoder") for m in names}
        self.pairs = list(itertools.combinations(names, 2))
        self.symmetric = {f"{k}_{l}": SymmetricAttention(units, name=f"{k}_{l}_attention") for k, l in self.pairs}
        self.anchor = None
        if len(names) == 3:
            self.anchor = "text" if "text" in names else names[0]
            self.anchor_attention = CrossModalAttention(units, name=f"{self.anchor}_attention")
        self.lstm = recurrent.Bidirectional(recurrent.LSTM(units, dropout=dropout), merge_mode="sum",
                                            name="fusion_lstm")

    def build(self, sequences_shape):
        """Builds the layers in the order `call` runs them (the order their weights are drawn in); the encoders
        may have been built already by a call of `high_level` (MMLatch's stage I)."""
        r = {m: tuple(sequences_shape[m][:-1]) + (self.units,) for m in self.modality_names}
        for m in self.modality_names:
            if not self.encoders[m].built:
                self.encoders[m].build(sequences_shape[m])
        for k, l in self.pairs:
            self.symmetric[f"{k}_{l}"].build(r[k], r[l])
        if self.anchor is not None:
            self.anchor_attention.build(r[self.anchor], r[self.anchor])
        parts = len(self.modality_names) + (self.anchor is not None) + len(self.pairs)
        self.lstm.build(r[self.modality_names[0]][:-1] + (parts * self.units,))

    def high_level(self, sequences, masks, training=None):
        """{k: r_k}, the unimodal encoders' outputs (MMLatch's top-down state)."""
        return {m: self.encoders[m](sequences[m], masks[m], training=training) for m in self.modality_names}

    def call(self, sequences, masks, training=None):
        r = self.high_level(sequences, masks, training)
        m = {(k, l): self.symmetric[f"{k}_{l}"](r[k], r[l], masks[k], masks[l]) for k, l in self.pairs}
        parts = [r[k] for k in self.modality_names]
        if self.anchor is not None:
            pair = tuple(k for k in self.modality_names if k != self.anchor)
            parts.append(self.anchor_attention(m[pair], r[self.anchor], masks[self.anchor]))
        parts += list(m.values())
        union = ops.any(ops.stack([masks[k] for k in self.modality_names], axis=0), axis=0)
        fused = self.lstm(ops.concatenate(parts, axis=-1), mask=union, training=training)
        return {"sequences": r, "unimodal": {k: masked_mean(r[k], masks[k]) for k in self.modality_names},
                "fused": fused}

    def get_config(self):
        return {**super().get_config(), "modality_names": list(self.modality_names), "units": self.units,
                "dropout": self.dropout}
