"""`av_mnist` built from the real MNIST and FSDD files in $MULTISENSORY_DATA."""

import os
import wave

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets
from multisensory.datasets import av_mnist
from multisensory.datasets.noise import bank_rows


def test_pairs_agree_on_the_digit(data_dir):
    images, image_labels, _, audio_labels, _, _ = av_mnist._read_sources(os.path.abspath(data_dir))
    for split in ("train", "validation", "test"):
        table = av_mnist.pairs(split, data_dir, seed=0)
        np.testing.assert_array_equal(image_labels[table["image_index"]], table["label"])
        np.testing.assert_array_equal(audio_labels[table["audio_index"]], table["label"])
        pair_ids = table["image_index"] * 10_000 + table["audio_index"]
        assert len(np.unique(pair_ids)) == len(pair_ids), "pairs are drawn without replacement"
        assert set(np.unique(table["label"])) == set(range(10))
    assert len(av_mnist.pairs("train", data_dir)["label"]) == 87_516
    assert len(av_mnist.pairs("test", data_dir)["label"]) == 87_516 // 8


def test_sources_split_8_1_1_before_pairing(data_dir):
    images, _, spectrograms, _, _, _ = av_mnist._read_sources(os.path.abspath(data_dir))
    assert len(images) == 70_000 and len(spectrograms) == 3_000
    for n, stream, expected in ((70_000, 0, (56_000, 7_000, 7_000)), (3_000, 1, (2_400, 300, 300))):
        split = av_mnist._split_indices(n, [0, stream])
        assert tuple(len(split[s]) for s in ("train", "validation", "test")) == expected
        assert len(np.unique(np.concatenate(list(split.values())))) == n
    tables = {s: av_mnist.pairs(s, data_dir, num_pairs=2000) for s in ("train", "validation", "test")}
    for key in ("image_index", "audio_index"):
        seen = [set(tables[s][key]) for s in tables]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2]), f"{key} shared across splits"


def test_spectrogram_has_201_bins_and_front_padding(data_dir):
    _, _, spectrograms, audio_labels, _, _ = av_mnist._read_sources(os.path.abspath(data_dir))
    assert spectrograms.shape == (3_000, 90, 201)
    wav_names = sorted(os.listdir(os.path.join(data_dir, "fsdd", "recordings")))
    with wave.open(os.path.join(data_dir, "fsdd", "recordings", wav_names[0])) as w:
        length = w.getnframes()
    assert audio_labels[0] == int(wav_names[0].split("_")[0])
    silent_frames = (18_262 - length) // 200 - 1  # frames lying wholly in the zero padding
    assert silent_frames > 0
    assert np.all(spectrograms[0, :silent_frames] == 0)
    assert np.any(spectrograms[0, -1] > 0)


def test_load_gives_named_modalities_and_is_seeded(data_dir):
    def first_batches(seed):
        ds = datasets.load("av_mnist", "train", data_dir=data_dir, batch_size=16, seed=seed, num_pairs=256,
                           noise={"audio": 0.5, "image": 0.25})
        return [(x["image"].numpy(), x["audio"].numpy(), y.numpy()) for x, y in ds.take(3)]

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    image, audio, label = a[0]
    assert image.shape == (16, 28, 28, 1) and audio.shape == (16, 90, 201) and label.shape == (16,)
    assert image.dtype == np.float32 and audio.dtype == np.float32
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0][2], c[0][2])


def test_load_pixels_and_labels_match_the_sources(data_dir):
    images, _, spectrograms, _, _, _ = av_mnist._read_sources(os.path.abspath(data_dir))
    table = av_mnist.pairs("test", data_dir, num_pairs=64)
    x, y = next(iter(datasets.load("av_mnist", "test", data_dir=data_dir, batch_size=64, num_pairs=64)))
    np.testing.assert_array_equal(y.numpy(), table["label"])
    np.testing.assert_allclose(x["image"].numpy()[..., 0], images[table["image_index"]], rtol=1e-6)
    np.testing.assert_array_equal(x["audio"].numpy(), spectrograms[table["audio_index"]])


def test_missing_files_explain_the_layout(tmp_path):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(FileNotFoundError, match=r"(?s)mnist/mnist\.npz.*fsdd/recordings/\*\.wav") as error:
        datasets.load("av_mnist", "train", data_dir=str(tmp_path))
    assert "free-spoken-digit-dataset" in str(error.value)


def test_audio_noise_goes_on_the_recording_before_padding_and_the_spectrogram(data_dir):
    """Barnum et al., appendix A.3: noise on the waveform at the recording's own power; the padding stays silent."""
    _, _, spectrograms, _, waveforms, lengths = av_mnist._read_sources(os.path.abspath(data_dir))
    table = av_mnist.pairs("test", data_dir, num_pairs=32)
    clean, _ = next(iter(datasets.load("av_mnist", "test", data_dir=data_dir, batch_size=32, num_pairs=32)))
    noisy, _ = next(iter(datasets.load("av_mnist", "test", data_dir=data_dir, batch_size=32, num_pairs=32,
                                       noise={"audio": 0.5})))
    silent = (18_262 - lengths[table["audio_index"]]) // 200 - 1  # frames wholly in the padding
    assert silent.max() > 0
    audio = noisy["audio"].numpy()
    for k, frames in enumerate(silent):
        assert np.all(audio[k, :frames] == 0), "noise reached the silent front padding"
        assert not np.array_equal(audio[k, -1], clean["audio"].numpy()[k, -1])

    # The spectra added per batch equal the direct formulation: noise on the waveform's own samples, then the STFT.
    domain = av_mnist.load_split("test", data_dir, num_pairs=32).raw()
    raw, _ = domain.fetch(np.arange(32))
    np.testing.assert_allclose(domain.finish(raw)["audio"].numpy(), spectrograms[table["audio_index"]], atol=1e-5)
    noise, seed = domain.noise["audio"], tf.constant([3, 4], tf.int64)
    fast = domain.finish(noise(raw, 0.5, seed))["audio"].numpy()
    direct = noise.reference(raw["audio_recording"], 0.5, seed).numpy()
    np.testing.assert_allclose(fast, direct, atol=2e-4)

    # At SNR 0.5 the noise power over a recording's own samples is twice its signal power.
    recordings = raw["audio_recording"].numpy()
    for k in range(4):
        start = 18_262 - lengths[recordings[k]]
        signal = waveforms[recordings[k], start:]
        i, j = (r.numpy()[k] for r in bank_rows(noise.bank.shape[0], 32, seed))
        unit = (noise.bank.numpy()[i, start:] + noise.bank.numpy()[j, start:]) / np.sqrt(2)
        np.testing.assert_allclose(noise.powers.numpy()[recordings[k]], np.mean(signal ** 2), rtol=1e-5)
        sigma2 = np.mean(signal ** 2) / 0.5
        assert 0.9 < np.mean((np.sqrt(sigma2) * unit) ** 2) / sigma2 < 1.1

