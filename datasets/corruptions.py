"""Corruptions of one modality of a batch, each with a severity in [0, 1] (0 leaves the batch unchanged).

| corruption | input | what severity s does |
|---|---|---|
| `salt_and_pepper` | image (B, H, W, C) | a fraction s of pixel positions, half set to the example's minimum, half to its maximum |
| `gaussian_blur` | image (B, H, W, C) | blur with a Gaussian kernel of standard deviation 2.5 s pixels (edges reflected) |
| `occlusion` | image (B, H, W, C) | a zeroed square covering a fraction s of the image (side sqrt(s) min(H, W)), at a random place per example |
| `time_mask` | time series (B, T, F) | a zeroed span of round(s T) consecutive steps at a random place per example (SpecAugment's time mask) |
| `frequency_mask` | spectrogram (B, T, F) | a zeroed band of round(s F) consecutive channels at a random place per example (SpecAugment's frequency mask) |
| `timestep_drop` | feature sequence (B, T, F) | each step zeroed independently with probability s |

Every function has the signature `f(x, severity, seed)` with a stateless `seed` (int tensor (2,)); they are applied
per modality by `multisensory.datasets.noise.augment` (`corruptions={modality: {name: severity}}`), which draws
the seeds, so the same seed gives the same corruption.
"""

import math

import numpy as np
import tensorflow as tf


def _fold(seed, k):
    return tf.random.experimental.stateless_fold_in(seed, k)


def _check_rank(x, rank, name):
    if len(x.shape) != rank:
        kind = "images (batch, height, width, channels)" if rank == 4 else "time series (batch, time, features)"
        raise ValueError(f"{name} applies to {kind}; got a tensor of shape {tuple(x.shape)}.")


def salt_and_pepper(x, severity, seed):
    _check_rank(x, 4, "salt_and_pepper")
    u = tf.random.stateless_uniform(tf.concat([tf.shape(x)[:3], [1]], 0), seed)
    low = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    x = tf.where(u < severity / 2, low, x)
    return tf.where(u > 1 - severity / 2, high, x)


def gaussian_blur(x, severity, seed=None):
    _check_rank(x, 4, "gaussian_blur")
    sigma = 2.5 * severity
    if sigma == 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), x.dtype)
    channels = x.shape[-1]
    padded = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(tf.nn.depthwise_conv2d(padded, rows, [1] * 4, "VALID"), cols, [1] * 4, "VALID")


def _span_mask(batch, length, span, seed):
    """(batch, length) float mask: 0 on `span` consecutive positions starting at a random place, 1 elsewhere."""
    start = tf.random.stateless_uniform([batch, 1], seed, 0, length - span + 1, tf.int32)
    positions = tf.range(length)[None, :]
    return tf.cast((positions < start) | (positions >= start + span), tf.float32)


def _mask_axis(x, axis, severity, seed):
    """Zeros round(severity * length) consecutive positions of `axis` (1: time, 2: features), per example."""
    length = tf.shape(x)[axis]
    span = tf.cast(tf.round(severity * tf.cast(length, tf.float32)), tf.int32)
    mask = _span_mask(tf.shape(x)[0], length, span, seed)
    return x * tf.cast(mask[:, :, None] if axis == 1 else mask[:, None, :], x.dtype)


def occlusion(x, severity, seed):
    _check_rank(x, 4, "occlusion")
    height, width = x.shape[1], x.shape[2]
    side = round(math.sqrt(severity) * min(height, width))
    if side == 0:
        return x
    batch = tf.shape(x)[0]
    rows = _span_mask(batch, height, side, _fold(seed, 0))
    cols = _span_mask(batch, width, side, _fold(seed, 1))
    keep = 1.0 - (1.0 - rows[:, :, None]) * (1.0 - cols[:, None, :])
    return x * tf.cast(keep[..., None], x.dtype)


def time_mask(x, severity, seed):
    _check_rank(x, 3, "time_mask")
    return _mask_axis(x, 1, severity, seed)


def frequency_mask(x, severity, seed):
    _check_rank(x, 3, "frequency_mask")
    return _mask_axis(x, 2, severity, seed)


def timestep_drop(x, severity, seed):
    _check_rank(x, 3, "timestep_drop")
    keep = tf.random.stateless_uniform(tf.shape(x)[:2], seed) >= severity
    return x * tf.cast(keep[..., None], x.dtype)


CORRUPTIONS = {f.__name__: f for f in (salt_and_pepper, gaussian_blur, occlusion, time_mask, frequency_mask,
                                       timestep_drop)}
