"""`MulTCore`: the Multimodal Transformer (Tsai, Bai, Liang, Kolter, Morency & Salakhutdinov 2019, ACL), section 3.

- Temporal 1-D convolutions bring every modality to size d; the result is scaled by sqrt(d) and given sinusoidal
  positions (counted from the first non-padding step, so front padding changes nothing), then dropout. This is done
  once, before the first encoder: the zoo's choice, where the authors' code re-applies the scaling and the
  positions at the input of every encoder (docs/mmlatch.md).
- Cross-modal transformers: for every target k and source j != k, `num_layers` layers of pre-norm cross-modal
  attention (queries from k's stream, keys and values from j's sequence, padding keys masked) and a position-wise
  feed-forward network, each with a residual; a final layer norm.
- For every target k the M - 1 streams are concatenated ((M - 1) d features) and a self-attention transformer of
  `num_layers` layers runs over them; the last element of each (a real step: the loaders pad at the front) is
  Z_k, and Z is their concatenation.
"""

import math
import warnings

import keras
from keras import layers, ops

from .sequences import positions


@keras.saving.register_keras_serializable(package="multisensory")
class TransformerLayer(layers.Layer):
    """Pre-norm (cross-modal or self) attention + feed-forward (4 d), each with dropout and a residual.

    `call(x, mask)` attends over x itself; with `cross=True`, `call(x, mask, source)` attends from x to `source`
    (mask: source's), which has x's feature size (in MulT every modality is projected to d first). As in the authors'
    code, the source passes through the same layer norm as the query.
    """

    def __init__(self, units, heads=4, dropout=0.1, attention_dropout=0.1, cross=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.heads, self.dropout, self.attention_dropout = units, heads, dropout, attention_dropout
        self.cross = cross
        if units % heads:
            raise ValueError(f"The model size {units} must be divisible by the number of heads {heads}.")
        self.norms = [layers.LayerNormalization(name=n) for n in ("norm_attention", "norm_ffn")]
        self.attention = layers.MultiHeadAttention(heads, units // heads, dropout=attention_dropout,
                                                   name="attention")
        self.ffn = keras.Sequential([layers.Dense(4 * units, activation="relu"), layers.Dense(units)], name="ffn")
        self.drop = layers.Dropout(dropout)

    def build(self, x_shape):
        for norm in self.norms:
            norm.build(x_shape)
        self.attention.build(x_shape, x_shape)
        self.ffn.build(x_shape)

    def call(self, x, mask, source=None, training=None):
        query = self.norms[0](x)
        source = self.norms[0](source) if self.cross else query
        attention_mask = ops.logical_and(ops.ones_like(query[:, :, :1], dtype="bool"), mask[:, None, :])
        with warnings.catch_warnings():
            if source.shape[1] == 1:  # said once by the model (`sequences.single_step_note`)
                warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            attended = self.attention(query, source, source, attention_mask=attention_mask, training=training)
        x = x + self.drop(attended, training=training)
        return x + self.drop(self.ffn(self.norms[1](x)), training=training)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "heads": self.heads, "dropout": self.dropout,
                "attention_dropout": self.attention_dropout, "cross": self.cross}


@keras.saving.register_keras_serializable(package="multisensory")
class TransformerStack(layers.Layer):
    """`num_layers` `TransformerLayer`s and a final layer norm; `call(x, mask, source=None)` as a layer's."""

    def __init__(self, units, num_layers=4, heads=4, dropout=0.1, attention_dropout=0.1, cross=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.num_layers, self.heads = units, num_layers, heads
        self.dropout, self.attention_dropout, self.cross = dropout, attention_dropout, cross
        self.stack = [TransformerLayer(units, heads, dropout, attention_dropout, cross, name=f"layer_{i}")
                      for i in range(num_layers)]
        self.norm = layers.LayerNormalization(name="norm")

    def build(self, x_shape):
        for layer in self.stack:
            layer.build(x_shape)
        self.norm.build(x_shape)

    def call(self, x, mask, source=None, training=None):
        for layer in self.stack:
            x = layer(x, mask, source, training=training)
        return self.norm(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers, "heads": self.heads,
                "dropout": self.dropout, "attention_dropout": self.attention_dropout, "cross": self.cross}


@keras.saving.register_keras_serializable(package="multisensory")
class MulTCore(layers.Layer):
    """MulT up to Z; `call(sequences, masks)` -> {"sequences": each target's stream, "unimodal", "fused"}.

    Args:
        modality_names: the modalities, in order (at least two).
        units: int. d, the common size (each target's stream has (M - 1) d features).
        num_layers, heads: int. Layers of every transformer, attention heads (paper: 4 and 8 or 10).
        kernel_size: int. Width of the temporal convolutions.
        dropout: float. Dropout of the embeddings, residual branches.
        attention_dropout: float. Dropout of the attention weights.
    """

    def __init__(self, modality_names, units=32, num_layers=4, heads=4, kernel_size=1, dropout=0.1,
                 attention_dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.modality_names, self.units, self.num_layers = tuple(modality_names), units, num_layers
        self.heads, self.kernel_size, self.dropout, self.attention_dropout = heads, kernel_size, dropout, attention_dropout
        names = self.modality_names
        self.projections = {m: layers.Conv1D(units, kernel_size, padding="same", use_bias=False,
                                             name=f"{m}_projection") for m in names}
        self.embedding_dropout = layers.Dropout(dropout)
        self.cross = {f"{j}_to_{k}": TransformerStack(units, num_layers, heads, dropout, attention_dropout, cross=True,
                                                      name=f"{j}_to_{k}") for k in names for j in names if j != k}
        self.streams = {k: TransformerStack((len(names) - 1) * units, num_layers, heads, dropout, attention_dropout,
                                            name=f"{k}_self_attention") for k in names}

    def build(self, sequences_shape):
        """Builds the layers in the order `call` runs them (the order their weights are drawn in), those not built
        already by a call of `high_level` (MMLatch's stage I)."""
        names = self.modality_names
        x = {m: tuple(sequences_shape[m][:-1]) + (self.units,) for m in names}
        in_call_order = [(self.projections[m], sequences_shape[m]) for m in names]
        for k in names:
            in_call_order += [(self.cross[f"{j}_to_{k}"], x[k]) for j in names if j != k]
            in_call_order.append((self.streams[k], x[k][:-1] + ((len(names) - 1) * self.units,)))
        for layer, shape in in_call_order:
            if not layer.built:
                layer.build(shape)

    def high_level(self, sequences, masks, training=None):
        """{k: target k's stream after its self-attention} (batch, T_k, (M - 1) d): MMLatch's top-down state."""
        names = self.modality_names
        x = {m: self.embedding_dropout(self.projections[m](sequences[m]) * math.sqrt(self.units)
                                       + positions(masks[m], self.units, self.compute_dtype), training=training)
             for m in names}
        return {k: self.streams[k](ops.concatenate([self.cross[f"{j}_to_{k}"](x[k], masks[j], x[j], training=training)
                                                    for j in names if j != k], axis=-1), masks[k], training=training)
                for k in names}

    def call(self, sequences, masks, training=None):
        streams = self.high_level(sequences, masks, training)
        unimodal = {k: streams[k][:, -1] for k in self.modality_names}
        return {"sequences": streams, "unimodal": unimodal, "fused": ops.concatenate(list(unimodal.values()), -1)}

    def get_config(self):
        return {**super().get_config(), "modality_names": list(self.modality_names), "units": self.units,
                "num_layers": self.num_layers, "heads": self.heads, "kernel_size": self.kernel_size,
                "dropout": self.dropout, "attention_dropout": self.attention_dropout}
