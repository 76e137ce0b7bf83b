"""Corruptions: severity 0 is the identity, severity grows the measured distortion, values by hand."""

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets
from multisensory.datasets import CORRUPTIONS
from multisensory.datasets import corruptions as C

SEED = tf.constant([4, 2])
IMAGES = tf.random.stateless_uniform((16, 24, 24, 3), [0, 1])
SERIES = tf.random.stateless_uniform((16, 40, 30), [0, 2]) + 0.5
INPUTS = {"salt_and_pepper": IMAGES, "gaussian_blur": IMAGES, "occlusion": IMAGES, "time_mask": SERIES,
          "frequency_mask": SERIES, "timestep_drop": SERIES}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_severity_zero_is_identity_and_distortion_grows(name):
    x = INPUTS[name]
    np.testing.assert_array_equal(CORRUPTIONS[name](x, 0.0, SEED), x)
    distortion = [float(tf.reduce_mean(tf.square(CORRUPTIONS[name](x, s, SEED) - x))) for s in (0.1, 0.4, 0.8)]
    assert 0 < distortion[0] < distortion[1] < distortion[2], distortion


def test_masks_zero_the_stated_share():
    assert float(tf.reduce_mean(tf.cast(C.time_mask(SERIES, 0.25, SEED) == 0, tf.float32))) == pytest.approx(0.25)
    zeros = C.frequency_mask(SERIES, 0.5, SEED).numpy() == 0
    assert zeros.mean() == pytest.approx(0.5)
    assert np.all(zeros.all(axis=1) == zeros.any(axis=1)), "whole frequency channels are masked"
    band = zeros[0, 0]
    assert np.all(np.diff(np.flatnonzero(band)) == 1), "the band is contiguous"
    occluded = C.occlusion(IMAGES, 0.25, SEED).numpy()[..., 0] == 0
    assert occluded.sum(axis=(1, 2)).tolist() == [144] * 16  # a 12 x 12 square of 24 x 24
    dropped = C.timestep_drop(tf.ones((200, 50, 2)), 0.3, SEED).numpy()
    assert np.all(dropped.min(-1) == dropped.max(-1)) and abs((dropped[..., 0] == 0).mean() - 0.3) < 0.02


def test_salt_and_pepper_uses_each_examples_range():
    x = tf.constant(np.linspace(0.2, 0.7, 2 * 10 * 10).reshape(2, 10, 10, 1), tf.float32)
    out = C.salt_and_pepper(x, 1.0, SEED).numpy()
    assert set(np.unique(out[0])) <= {float(x[0].numpy().min()), float(x[0].numpy().max())}
    changed = (C.salt_and_pepper(x, 0.3, SEED).numpy() != x.numpy()).mean()
    assert abs(changed - 0.3) < 0.1


def test_gaussian_blur_keeps_constants_and_spreads_an_impulse():
    np.testing.assert_allclose(C.gaussian_blur(tf.ones((1, 9, 9, 2)), 0.6), 1.0, rtol=1e-6)
    impulse = np.zeros((1, 15, 15, 1), "float32")
    impulse[0, 7, 7, 0] = 1.0
    out = C.gaussian_blur(tf.constant(impulse), 0.4).numpy()[0, :, :, 0]  # sigma 1
    assert out.sum() == pytest.approx(1.0, rel=1e-5)
    g = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    g /= g.sum()
    np.testing.assert_allclose(out[7, 4:11], g[3] * g, rtol=1e-5)


def test_wrong_rank_is_refused():
    with pytest.raises(ValueError, match="gaussian_blur applies to images"):
        C.gaussian_blur(SERIES, 0.5)
    with pytest.raises(ValueError, match="time_mask applies to time series"):
        C.time_mask(IMAGES, 0.5, SEED)


def test_pipeline_corruptions_are_seeded_and_checked():
    def first(**kw):
        x, _ = next(iter(datasets.load("synthetic_av", "test", num_examples=32, **kw)))
        return {k: v.numpy() for k, v in x.items()}

    setting = {"image": {"occlusion": 0.5, "gaussian_blur": 0.2}, "audio": {"time_mask": 0.3}}
    a, b, clean = first(corruptions=setting), first(corruptions=setting), first()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.allclose(a[k], clean[k])
    with pytest.raises(ValueError, match="Unknown corruption.*'blurr'.*'audio'"):
        first(corruptions={"audio": {"blurr": 0.3}})
    with pytest.raises(ValueError, match="Severity of time_mask for modality 'audio'"):
        first(corruptions={"audio": {"time_mask": 1.5}})
    with pytest.raises(ValueError, match="unknown modality 'video'"):
        first(corruptions={"video": {"time_mask": 0.5}})
