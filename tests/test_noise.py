"""White noise at an SNR and modality dropout as seeded tf.data transforms."""

import json

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets
from multisensory.datasets import augment, bank_noise, dropout_modality, white_noise


def batches(ds):
    return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in ds]


@pytest.mark.parametrize("snr", [0.25, 0.5, 1.0, 4.0])
def test_white_noise_reaches_the_requested_snr(snr):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 28, 28, 1)).astype("float32") * rng.uniform(0.1, 3, (64, 1, 1, 1)).astype("float32")
    noisy = white_noise(tf.constant(x), snr, tf.constant([1, 2])).numpy()
    noise = noisy - x
    measured = np.mean(np.mean(x ** 2, axis=(1, 2, 3)) / np.mean(noise ** 2, axis=(1, 2, 3)))
    assert abs(measured / snr - 1) < 0.05, measured
    assert abs(noise.mean()) < 0.05 * np.sqrt(np.mean(x ** 2) / snr)


def measured_snr(clean, noisy):
    axes = tuple(range(1, clean.ndim))
    return np.mean(np.mean(clean ** 2, axis=axes) / np.mean((noisy - clean) ** 2, axis=axes))


@pytest.mark.parametrize("snr", [0.25, 0.5, 2.0])
def test_pipeline_noise_reaches_the_requested_snr(snr):
    def first(**kw):
        (x, _), = batches(datasets.load("synthetic_av", "test", num_examples=128, batch_size=128, **kw))
        return x

    clean, noisy = first(), first(noise={"image": snr, "audio": snr})
    for modality in ("image", "audio"):
        assert abs(measured_snr(clean[modality], noisy[modality]) / snr - 1) < 0.05, modality


def test_bank_noise_is_unit_gaussian_from_distinct_rows():
    bank = tf.random.stateless_normal((8, 4000), [0, 0])
    noise = bank_noise(bank, 500, tf.constant([1, 2])).numpy()
    assert abs(noise.std() - 1) < 0.01 and abs(noise.mean()) < 0.01
    rows = bank.numpy()
    for example in noise[:20]:  # every example is (B[i] + B[j]) / sqrt(2) with i != j
        sums = {(i, j) for i in range(8) for j in range(8) if np.allclose(example, (rows[i] + rows[j]) / 2 ** 0.5)}
        assert sums and all(i != j for i, j in sums)


def test_variable_length_modalities_get_fresh_noise():
    ds = tf.data.Dataset.range(8).map(lambda i: ({"seq": tf.ones((i % 3 + 200, 30))}, 0.0)).padded_batch(4)
    assert ds.element_spec[0]["seq"].shape.as_list() == [None, None, 30]
    (clean, _), = batches(ds.take(1))
    (noisy, _), = batches(augment(ds, ["seq"], snr={"seq": 1.0}).take(1))
    assert noisy["seq"].shape == clean["seq"].shape == (4, 202, 30)
    assert abs(measured_snr(clean["seq"], noisy["seq"]) - 1) < 0.05


def test_snr_is_measured_per_example():
    x = np.stack([np.full((100, 20), 0.1), np.full((100, 20), 10.0)]).astype("float32")
    noise = white_noise(tf.constant(x), 1.0, tf.constant([3, 4])).numpy() - x
    np.testing.assert_allclose(np.sqrt((noise ** 2).mean(axis=(1, 2))), [0.1, 10.0], rtol=0.05)


def test_dropout_zero_is_identity_and_one_drops_everything():
    x = tf.random.normal((16, 5))
    np.testing.assert_array_equal(dropout_modality(x, 0.0, tf.constant([0, 1])), x)
    np.testing.assert_array_equal(dropout_modality(x, 1.0, tf.constant([0, 1])), np.zeros((16, 5)))
    half = dropout_modality(tf.ones((4000, 3)), 0.5, tf.constant([5, 6])).numpy()
    assert np.all((half == 0).all(1) | (half == 1).all(1))
    assert abs((half[:, 0] == 0).mean() - 0.5) < 0.03


def test_pipeline_p0_dropout_is_identity():
    plain = batches(datasets.load("synthetic_av", "test", num_examples=64))
    same = batches(datasets.load("synthetic_av", "test", num_examples=64, dropout={"audio": 0.0, "image": 0.0}))
    for (a, ya), (b, yb) in zip(plain, same):
        np.testing.assert_array_equal(ya, yb)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_pipeline_noise_is_seeded_and_per_modality():
    clean = batches(datasets.load("synthetic_av", "test", num_examples=64))
    a = batches(datasets.load("synthetic_av", "test", num_examples=64, noise={"audio": 0.5}, seed=0))
    b = batches(datasets.load("synthetic_av", "test", num_examples=64, noise={"audio": 0.5}, seed=0))
    c = batches(datasets.load("synthetic_av", "test", num_examples=64, noise={"audio": 0.5}, seed=1))
    np.testing.assert_array_equal(a[0][0]["audio"], b[0][0]["audio"])
    assert not np.allclose(a[0][0]["audio"], clean[0][0]["audio"])
    assert not np.allclose(c[0][0]["audio"], a[0][0]["audio"])
    np.testing.assert_array_equal(a[0][0]["image"], clean[0][0]["image"])


def test_training_noise_changes_each_epoch_and_evaluation_noise_does_not():
    test = datasets.load("synthetic_av", "test", num_examples=32, noise={"image": 1.0})
    np.testing.assert_array_equal(batches(test)[0][0]["image"], batches(test)[0][0]["image"])
    train = datasets.load("synthetic_av", "train", num_examples=32, batch_size=32, noise={"image": 1.0})
    (first, y1), = batches(train)
    (second, y2), = batches(train)
    assert sorted(y1) == sorted(y2)  # the same examples, reshuffled, with new noise:
    assert not np.allclose(np.sort(first["image"].ravel()), np.sort(second["image"].ravel()))


def test_drop_zeros_the_named_modality_after_noise():
    (x, _), = batches(datasets.load("synthetic_av", "test", num_examples=16, batch_size=16,
                                    noise={"audio": 0.5}, drop=("audio",)))
    assert np.all(x["audio"] == 0) and np.any(x["image"] != 0)


def test_bad_settings_name_the_modality():
    ds = datasets.load("synthetic_av", "test", num_examples=8)
    with pytest.raises(ValueError, match="unknown modality 'video'"):
        augment(ds, ["image", "audio"], snr={"video": 1.0})
    with pytest.raises(ValueError, match="'audio'"):
        augment(ds, ["image", "audio"], snr={"audio": -1.0})
    with pytest.raises(ValueError, match="'image'"):
        augment(ds, ["image", "audio"], dropout={"image": 1.5})


def snr_over(clean, noisy, real):
    """Per-example power ratio over the real steps (batch, T) of sequences (batch, T, D)."""
    weights = real[..., None].astype("float64")
    signal = (clean.astype("float64") ** 2 * weights).sum((1, 2))
    noise = ((noisy - clean).astype("float64") ** 2 * weights).sum((1, 2))
    return signal / noise


def test_sequence_noise_goes_on_real_steps_only_for_a_registered_dataset(tmp_path):
    """mosi from CMU-MultimodalSDK files: 3-69 words front-padded to 50 steps. Padding stays exactly 0 and the SNR
    over the real steps is the one asked (before, the power counted the padding and every padding step got noise)."""
    from sentiment_fixtures import write_csd

    write_csd(tmp_path / "mosi")
    load = dict(data_dir=str(tmp_path), batch_size=64, shuffle=False)
    (clean, _), = batches(datasets.load("mosi", "train", **load))
    (noisy, _), = batches(datasets.load("mosi", "train", noise={"text": 1.0, "audio": 0.25}, **load))
    for m, snr in (("text", 1.0), ("audio", 0.25)):
        real = np.any(clean[m] != 0, axis=-1)
        assert (~real).any(axis=1).mean() > 0.5  # most examples are padded
        np.testing.assert_array_equal(noisy[m][~real], 0.0)
        measured = snr_over(clean[m], noisy[m], real)
        assert np.all(np.abs(measured / snr - 1) < 0.3), measured
    np.testing.assert_array_equal(noisy["vision"], clean["vision"])


def test_sequence_noise_follows_a_folder_datasets_lengths(tmp_path):
    """A folder of ragged steps with `<modality>_lengths`: the lengths say which steps are real, so a real all-zero
    first step gets noise while the padding before it stays 0."""
    rng = np.random.default_rng(0)
    lengths = np.array([2, 5, 3, 1, 4, 5])
    steps = rng.normal(size=(lengths.sum(), 3)).astype("float32")
    steps[0] = 0.0  # the first example's first real step is all zero
    np.savez(tmp_path / "d.npz", seq=steps, seq_lengths=lengths, label=rng.integers(0, 2, len(lengths)))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "modalities": [{"name": "seq", "kind": "sequence", "shape": [None, 3]}],
        "task": {"type": "classification", "num_classes": 2},
        "files": {s: "d.npz" for s in ("train", "validation", "test")}}))
    path = str(tmp_path)
    (clean, _), = batches(datasets.load(path, "test", batch_size=6, shuffle=False))
    (noisy, _), = batches(datasets.load(path, "test", batch_size=6, shuffle=False, noise={"seq": 0.5}))
    real = np.arange(5)[None, :] >= 5 - lengths[:, None]
    np.testing.assert_array_equal(noisy["seq"][~real], 0.0)
    assert np.all(noisy["seq"][real] != clean["seq"][real])  # the all-zero real step too
    noises = [batches(datasets.load(path, "test", batch_size=6, shuffle=False, noise={"seq": 0.5}, seed=s))[0][0]
              ["seq"] - clean["seq"] for s in range(40)]  # 3-15 real values per example: pooled over 40 draws
    weights = real[..., None]
    signal = (clean["seq"].astype("float64") ** 2 * weights).sum((1, 2))
    noise = np.mean([(n.astype("float64") ** 2 * weights).sum((1, 2)) for n in noises], axis=0)
    np.testing.assert_allclose(signal / noise, 0.5, rtol=0.3)


def test_real_steps_from_lengths_or_from_the_first_non_zero_step():
    from multisensory.datasets.noise import real_steps

    x = np.zeros((2, 5, 2), "float32")
    x[0, 2:] = 1.0
    x[0, 3] = 0.0  # a real all-zero step inside the sequence
    x[1, 4, 1] = 2.0
    np.testing.assert_array_equal(real_steps(tf.constant(x)), [[0, 0, 1, 1, 1], [0, 0, 0, 0, 1]])
    np.testing.assert_array_equal(real_steps(tf.constant(x), tf.constant([4, 2])), [[0, 1, 1, 1, 1], [0, 0, 0, 1, 1]])
