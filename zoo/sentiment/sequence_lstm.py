"""`MaskedLSTM`: an LSTM over a zero-padded feature sequence that skips the padding.

The sentiment loaders pad with all-zero steps in front (`multisensory.datasets.sequence_features`), so the steps before
the first one holding a non-zero feature are padding; the mask makes the LSTM carry its state across them. `subnetwork`
gives the sentiment baselines (`tfn`, `lmf`) their unimodal subnetworks; `ef_lstm` runs one over the concatenated steps.
"""

import keras
from keras import ops

from multisensory.datasets.noise import real_steps

from .. import recurrent
from ..encoders import encoder_for


def padding_mask(x):
    """(batch, T) boolean mask of the real steps of front-padded x (batch, T, D): True from the first step with any
    non-zero feature on, so a real all-zero step inside a sequence counts as real; the rule of the noise transforms
    (`multisensory.datasets.noise.real_steps`)."""
    return real_steps(x)


def masked_mean(x, mask):
    """Mean of x (batch, T, D) over the steps where `mask` (batch, T) is True (0 when there is none)."""
    weights = ops.cast(mask, x.dtype)[..., None]
    return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="multisensory")
class MaskedLSTM(keras.layers.Layer):
    """LSTM(units) over (batch, T, D) with zero steps masked; returns the last state (batch, units).

    Args:
        units: int. Size of the state.
        dropout: float. Dropout on the inputs of the LSTM.
    """

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout = units, dropout
        self.lstm = recurrent.LSTM(units, dropout=dropout)

    def call(self, x, training=None):
        return self.lstm(x, mask=padding_mask(x), training=training)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


def check_aligned(modalities, model_name, fixed_length=False):
    """Raises unless every modality is a sequence (T, D) of one length T (a known one with `fixed_length`)."""
    lengths = {m.shape[0] for m in modalities if len(m.shape) == 2}
    if any(len(m.shape) != 2 for m in modalities) or len(lengths) != 1 or (fixed_length and None in lengths):
        raise ValueError(f"{model_name} reads aligned steps: every modality must be a sequence (T, D) of one "
                         f"{'fixed ' if fixed_length else ''}length T"
                         f"{' (use datasets.info(name, data_dir=...))' if fixed_length else ''}; "
                         f"got {[(m.name, m.shape) for m in modalities]}.")


def subnetwork(modality, units, dropout=0.0):
    """A modality's unimodal subnetwork: `MaskedLSTM` for sequences, the zoo encoder of its kind otherwise."""
    if modality.kind in ("sequence", "text", "spectrogram"):
        return MaskedLSTM(units, dropout, name=f"{modality.name}_lstm")
    return encoder_for(modality, units, dropout)


def fuse_subnetworks(model, inputs, training=None):
    """The forward pass of `tfn` and `lmf`: Z_m from `model.subnetworks`, Z = `model.fusion`, then `model.head`."""
    unimodal = {m: model.subnetworks[m](inputs[m], training=training) for m in model.modality_names}
    fused = model.fusion(list(unimodal.values()))
    outputs = {"unimodal": unimodal, "fused": fused}
    if model.plain_head:
        outputs["prediction"] = model._head_output(model.head(fused, training=training))
    return outputs
