"""`av_mnist`: MNIST digits paired with Free Spoken Digit recordings of the same digit.

Built as Barnum, Talukder & Yue, "On the Benefits of Early Fusion in Multimodal Representation Learning"
(arXiv 2011.07191), section 4, build theirs:
1. Both sources are pooled (MNIST train + test = 70,000 images; FSDD = 3,000 recordings) and each is split 8:1:1
   into train / validation / test by a seeded permutation, before any pairing, so no image or recording is shared
   between splits.
2. Every recording is front-padded with zeros to the length of the longest recording (18,262 samples in FSDD
   v1.0.10) and turned into a spectrogram with `tf.signal.stft` (Hann window of 400 samples, stride 200, FFT of 400:
   201 frequency bins, 90 frames). Features are log(1 + |STFT|) of the waveform scaled to [-1, 1]; the paper does not
   state its magnitude scaling, and this choice keeps padding at exactly 0.
3. Within a split, every (image, recording) pair of the same digit is a candidate; a seeded sampler draws
   `num_pairs` distinct candidates uniformly (87,516 for train as in the paper; validation and test default to one
   eighth of that, 10,939, keeping the 8:1:1 ratio, since the paper gives no number for them).

Images are float32 in [0, 1]. `seed` seeds both the source split and the pair sampling.
"""

import functools
import glob
import os
import wave

import numpy as np
import tensorflow as tf

from .dataset_info import DatasetInfo, Modality, Task
from .registry import SPLITS, Source, missing_files_error, register_dataset

TRAIN_PAIRS = 87_516
WINDOW, STRIDE, BINS = 400, 200, 201
FRAMES = 90
SAMPLE_RATE = 8000
FRACTIONS = (0.8, 0.1, 0.1)

INFO = DatasetInfo(
    name="av_mnist",
    modalities=(
        Modality("image", (28, 28, 1), "float32", "image", "MNIST digit, pixels in [0, 1]"),
        Modality("audio", (FRAMES, BINS), "float32", "spectrogram",
                 "FSDD recording, front-padded, log(1 + |STFT|), window 400, stride 200"),
    ),
    task=Task("classification", num_classes=10, metrics=("accuracy", "error", "auc")),
    splits={"train": TRAIN_PAIRS, "validation": TRAIN_PAIRS // 8, "test": TRAIN_PAIRS // 8},
    license="MNIST: CC BY-SA 3.0; Free Spoken Digit Dataset: CC BY-SA 4.0.",
    citation=("Barnum, Talukder & Yue (2020), On the Benefits of Early Fusion in Multimodal Representation Learning, "
              "arXiv:2011.07191. LeCun et al. (1998), MNIST. Jackson et al., Free Spoken Digit Dataset."),
    source=("MNIST: the mnist.npz that keras.datasets.mnist.load_data() caches; "
            "FSDD: https://github.com/Jakobovski/free-spoken-digit-dataset (recordings/)."),
    files=("  mnist/mnist.npz          keys x_train, y_train, x_test, y_test (uint8, 28x28)\n"
           "  fsdd/recordings/*.wav    {digit}_{speaker}_{take}.wav, mono 16-bit 8 kHz"),
)


def _split_indices(n, seed):
    """Seeded 8:1:1 split of range(n): {"train": idx, "validation": idx, "test": idx}."""
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = round(FRACTIONS[0] * n), round(FRACTIONS[1] * n)
    return dict(zip(SPLITS, np.split(order, [n_train, n_train + n_val])))


@functools.lru_cache(maxsize=2)
def _read_sources(data_dir):
    """Reads MNIST images/labels and FSDD spectrograms/labels once per data directory."""
    mnist_path = os.path.join(data_dir, "mnist", "mnist.npz")
    wav_paths = sorted(glob.glob(os.path.join(data_dir, "fsdd", "recordings", "*.wav")))
    missing = ([] if os.path.isfile(mnist_path) else ["mnist/mnist.npz"]) + (
        [] if wav_paths else ["fsdd/recordings/*.wav"])
    if missing:
        raise missing_files_error(INFO, data_dir, missing)

    with np.load(mnist_path, allow_pickle=False) as f:
        images = np.concatenate([f["x_train"], f["x_test"]])
        image_labels = np.concatenate([f["y_train"], f["y_test"]]).astype("int32")

    waves = [_read_wav(p) for p in wav_paths]
    audio_labels = np.array([int(os.path.basename(p).split("_")[0]) for p in wav_paths], dtype="int32")
    longest = max(len(w) for w in waves)
    padded = np.zeros((len(waves), longest), dtype="float32")
    for i, w in enumerate(waves):
        padded[i, longest - len(w):] = w
    spectrograms = spectrogram(padded)
    if spectrograms.shape[1] != FRAMES:
        raise ValueError(f"Dataset 'av_mnist': the longest recording in '{data_dir}' has {longest} samples, giving "
                         f"{spectrograms.shape[1]} frames; FSDD v1.0.10 gives {FRAMES}.")
    return images, image_labels, spectrograms, audio_labels


def _read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE:
            raise ValueError(f"Dataset 'av_mnist': '{path}' must be mono 16-bit {SAMPLE_RATE} Hz, got "
                             f"{w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit, {w.getframerate()} Hz.")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype("float32") / 32768.0


def spectrogram(waveforms):
    """log(1 + |STFT|) with window 400, stride 200, 201 bins, of float waveforms (n, samples) -> (n, frames, 201)."""
    stft = tf.signal.stft(tf.constant(waveforms), frame_length=WINDOW, frame_step=STRIDE, fft_length=WINDOW)
    return tf.math.log1p(tf.abs(stft)).numpy()


def pairs(split, data_dir, seed=0, num_pairs=None):
    """The sampled pairs of a split: dict of int arrays `image_index`, `audio_index`, `label`.

    Indices point into the pooled sources (MNIST train then test; FSDD recordings sorted by file name).
    """
    images, image_labels, _, audio_labels = _read_sources(os.path.abspath(data_dir))
    image_split = _split_indices(len(images), [seed, 0])[split]
    audio_split = _split_indices(len(audio_labels), [seed, 1])[split]
    num_pairs = num_pairs or (TRAIN_PAIRS if split == "train" else TRAIN_PAIRS // 8)

    by_digit = [(image_split[image_labels[image_split] == d], audio_split[audio_labels[audio_split] == d])
                for d in range(10)]
    counts = np.array([len(i) * len(a) for i, a in by_digit], dtype="int64")
    if num_pairs > counts.sum():
        raise ValueError(f"Dataset 'av_mnist': {num_pairs} pairs requested, split '{split}' has {counts.sum()}.")
    rng = np.random.default_rng([seed, 2, SPLITS.index(split)])
    flat = rng.choice(counts.sum(), size=num_pairs, replace=False)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    digit = np.searchsorted(offsets, flat, side="right") - 1
    image_index, audio_index = np.empty(num_pairs, "int64"), np.empty(num_pairs, "int64")
    for d, (imgs, auds) in enumerate(by_digit):
        sel = digit == d
        i, a = np.divmod(flat[sel] - offsets[d], len(auds))
        image_index[sel], audio_index[sel] = imgs[i], auds[a]
    return {"image_index": image_index, "audio_index": audio_index, "label": digit.astype("int32")}


@functools.lru_cache(maxsize=2)
def _source_tensors(data_dir):
    images, _, spectrograms, _ = _read_sources(data_dir)
    return tf.constant(images), tf.constant(spectrograms)


def load_split(split, data_dir, seed=0, num_pairs=None):
    """Loader of `av_mnist`; `num_pairs` overrides the number of pairs drawn for the split."""
    data_dir = os.path.abspath(data_dir)
    images, spectrograms = _source_tensors(data_dir)
    table = pairs(split, data_dir, seed, num_pairs)
    image_index, audio_index = tf.constant(table["image_index"]), tf.constant(table["audio_index"])
    labels = tf.constant(table["label"])

    def fetch(indices):
        image = tf.cast(tf.gather(images, tf.gather(image_index, indices)), tf.float32)[..., None] / 255.0
        audio = tf.gather(spectrograms, tf.gather(audio_index, indices))
        return {"image": image, "audio": audio}, tf.gather(labels, indices)

    return Source(len(table["label"]), fetch)


register_dataset(INFO, load_split)
