"""Sequence views shared by `mult` and `mmlatch`.

- `as_sequence`: a modality as a (batch, T, D) sequence: sequences as they are, an image (H, W, C) as H rows of
  W*C features, a vector as one step.
- `padding_mask`: True on real steps: from the first one with any non-zero feature (the loaders front-pad with
  all-zero steps).
- `sequence_views`: every modality's sequence view (optionally resampled to one length) and its padding mask.
- `to_length`: a sequence linearly resampled in time to T steps (identity when it has T already); MMLatch's
  per-step masks and concatenations need one timeline, so unaligned modalities are brought to the longest length.
- `single_step_note`: what attention does over a modality of one step (a vector), said once.
- `positions`: sinusoidal position encodings (Vaswani et al. 2017) of each step's index counted from the first
  non-padding step, so that front padding shifts nothing (padding steps get position 0).
"""

import math
import warnings

import tensorflow as tf
from keras import ops

from ..sentiment.sequence_lstm import masked_mean, padding_mask

__all__ = ["as_sequence", "padding_mask", "to_length", "positions", "sequence_shape", "masked_mean",
           "sequence_views", "single_step_note"]


def sequence_shape(modality):
    """(T, D) of a modality's sequence view."""
    shape = tuple(modality.shape)
    if len(shape) == 1:
        return 1, shape[0]
    if len(shape) == 2:
        return shape
    return shape[0], int(math.prod(shape[1:]))


def as_sequence(x, modality):
    """(batch, T, D) view of a modality's tensor (see the module docstring)."""
    steps, features = sequence_shape(modality)
    return ops.reshape(x, (-1, steps if steps is not None else ops.shape(x)[1], features))


def single_step_note(model, names):
    """Says once (a `UserWarning`, shown once per process) that `names` are attended over as one step each.

    Attention over one key weighs it 1 whatever its score (the softmax of a single score is 1), so attending to such
    a modality passes its projected values through and its self-attention is a learned projection: the model still
    fuses it, but attention chooses nothing there. Keras' warning about a softmax over an axis of size 1 is left out
    for these layers (`attention.attend` skips that softmax; MulT's layers silence it).
    """
    if names:
        warnings.warn(f"{model}: {', '.join(names)} {'is a single step' if len(names) == 1 else 'are single steps'} "
                      "(a vector, no time axis): attention over one step gives it weight 1, so attending to it passes "
                      "its projected values through; attention selects nothing there.", UserWarning, stacklevel=3)


def to_length(x, steps):
    """x (batch, T, D) linearly resampled in time to `steps` steps (align_corners-free, as image resizing)."""
    if x.shape[1] == steps:
        return x
    return tf.image.resize(x[..., None], (steps, x.shape[-1]), method="bilinear")[..., 0]


def sequence_views(inputs, modalities, steps=None):
    """({m: (batch, T_m, D_m)}, {m: padding mask (batch, T_m)}) of {m: tensor}; all resampled to `steps` if given."""
    sequences = {m.name: as_sequence(inputs[m.name], m) for m in modalities}
    if steps is not None:
        sequences = {m: to_length(x, steps) for m, x in sequences.items()}
    return sequences, {m: padding_mask(x) for m, x in sequences.items()}


def positions(mask, dim, dtype="float32"):
    """(batch, T, dim) sinusoidal encodings of the steps' indices counted from the first non-padding step, computed in
    float32 and given in `dtype`."""
    index = ops.maximum(ops.cumsum(ops.cast(mask, "float32"), axis=1) - 1.0, 0.0)[..., None]  # (B, T, 1)
    rates = ops.exp(-math.log(10000.0) * ops.arange(0, dim, 2, dtype="float32") / dim)  # (ceil(dim / 2),)
    angles = index * rates
    encoding = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)  # (B, T, ceil(dim/2), 2): interleaved
    return ops.cast(ops.reshape(encoding, (ops.shape(mask)[0], ops.shape(mask)[1], -1))[..., :dim], dtype)

