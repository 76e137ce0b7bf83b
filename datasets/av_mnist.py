"""`av_mnist`: MNIST digits paired with Free Spoken Digit recordings of the same digit.

Built as Barnum, Talukder & Yue, "On the Benefits of Early Fusion in Multimodal Representation Learning"
(arXiv 2011.07191), section 4, build theirs:
1. Both sources are pooled (MNIST train + test = 70,000 images; FSDD = 3,000 recordings) and each is split 8:1:1
   into train / validation / test by a seeded permutation, before any pairing, so no image or recording is shared
   between splits.
2. Every recording is front-padded with zeros to the length of the longest recording (18,262 samples in FSDD
   v1.0.10; a longer one is refused) and turned into a spectrogram with `tf.signal.stft` (Hann window of 400
   samples, stride 200, FFT of 400: 201 frequency bins, 90 frames, which cover the first 18,200 samples: the last
   62 of the front-padded recording are dropped, the zoo's reading of appendix A.3, which does not say how the
   remainder is treated). Features are log(1 + |STFT|) of the waveform
   scaled to [-1, 1]; the paper does not state its magnitude scaling, and this choice keeps padding at exactly 0.
3. Within a split, every (image, recording) pair of the same digit is a candidate; a seeded sampler draws
   `num_pairs` distinct candidates uniformly (87,516 for train as in the paper; validation and test default to one
   eighth of that, 10,939, keeping the 8:1:1 ratio, since the paper gives no number for them).

Images are float32 pixel values 0-255, as the files hold them; models scale them by 1/255 themselves
(`Modality.standardize`), and a served model takes the recording itself (`Modality.raw`, front-padded and turned
into the spectrogram by `multisensory.datasets.raw_inputs`), so what a user has goes straight in. `seed` seeds
both the source split and the pair sampling.

Audio noise (`noise={"audio": snr}`) acts as in the paper's appendix A.3: white noise is added to the recording
itself, its power measured over the recording's own samples, then the recording is front-padded with silence and
the spectrogram taken, per batch in the tf.data pipeline (the source's `RawDomain`; `multisensory.datasets.noise`).
Without audio noise the spectrograms are computed once, when the files are read, and the raw domain (the recordings'
spectra and the noise bank) is never built.

What the paper states and what this loader does differ in two places, written here where the numbers are used:
- The paper gives 87,516 training, 174,490 validation and 175,389 test pairs (section 4). Validation and test
  default here to one eighth of the training pairs (10,939) to keep evaluation cheap; `num_pairs=` sets any count a
  split holds.
- Its pool sizes point at an older FSDD release (v1.0.8, about 2,500 recordings) than the 3,000 recordings of
  v1.0.10 read here; that release's longest recording, and so its padded frame count, may differ from the 90 frames
  (18,262 samples) of v1.0.10 used here.
"""

import glob
import os
import wave

import numpy as np
import tensorflow as tf

from .dataset_info import DatasetInfo, Modality, Task
from .raw_inputs import log_spectrogram
from .files import DataFileError, cache_watching, check_labels, check_uint8_pixels, reading, regular_file
from . import noise as noise_lib
from .registry import SPLITS, RawDomain, Source, missing_files_error, register_dataset

TRAIN_PAIRS = 87_516
WINDOW, STRIDE, BINS = 400, 200, 201
FRAMES = 90
SAMPLES = 18_262  # the longest FSDD v1.0.10 recording, which every recording is front-padded to
SAMPLE_RATE = 8000
FRACTIONS = (0.8, 0.1, 0.1)

INFO = DatasetInfo(
    name="av_mnist",
    modalities=(
        Modality("image", (28, 28, 1), "float32", "image", "MNIST digit, pixel values 0-255 (the model scales them)",
                 standardize={"mean": [0.0], "std": [255.0]}),
        Modality("audio", (FRAMES, BINS), "float32", "spectrogram",
                 "FSDD recording, front-padded, log(1 + |STFT|), window 400, stride 200",
                 raw={"kind": "waveform", "samples": SAMPLES, "sample_rate": SAMPLE_RATE, "window": WINDOW,
                      "stride": STRIDE}),
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


def _folders(data_dir, *_, **__):
    return [os.path.join(data_dir, "mnist"), os.path.join(data_dir, "fsdd")]


@cache_watching(_folders)
def _read_sources(data_dir):
    """Reads MNIST images/labels and FSDD spectrograms/labels once per data directory."""
    mnist_path = os.path.join(data_dir, "mnist", "mnist.npz")
    wav_paths = sorted(glob.glob(os.path.join(data_dir, "fsdd", "recordings", "*.wav")))
    missing = ([] if os.path.isfile(mnist_path) else ["mnist/mnist.npz"]) + (
        [] if wav_paths else ["fsdd/recordings/*.wav"])
    if missing:
        raise missing_files_error(INFO, data_dir, missing)

    with reading(regular_file(mnist_path)), np.load(mnist_path, allow_pickle=False) as f:
        images = np.concatenate([check_uint8_pixels(f[k], mnist_path, k) for k in ("x_train", "x_test")])
        image_labels = check_labels(np.concatenate([f["y_train"], f["y_test"]]), 10, mnist_path)
    if images.shape[1:] != (28, 28):
        raise DataFileError(f"'{mnist_path}': images must be 28x28, got {images.shape[1:]}.")

    waves = [_read_wav(p) for p in wav_paths]
    audio_labels = np.array([_digit(p) for p in wav_paths], dtype="int32")
    longest = max(len(w) for w in waves)
    if longest > SAMPLES:
        raise DataFileError(f"Dataset 'av_mnist': a recording in '{data_dir}' has {longest} samples; FSDD v1.0.10's "
                            f"longest has {SAMPLES}, which every recording is front-padded to.")
    padded = np.zeros((len(waves), SAMPLES), dtype="float32")
    for i, w in enumerate(waves):
        padded[i, SAMPLES - len(w):] = w
    spectrograms = spectrogram(padded)
    lengths = np.array([len(w) for w in waves], dtype="int32")
    return images, image_labels, spectrograms, audio_labels, padded, lengths


def _digit(path):
    digit = os.path.basename(path).split("_")[0]
    if not (digit.isdigit() and int(digit) < 10):
        raise DataFileError(f"'{path}': FSDD names are {{digit}}_{{speaker}}_{{take}}.wav with a digit 0-9 first.")
    return int(digit)


def _read_wav(path):
    with reading(regular_file(path)), wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE:
            raise DataFileError(f"Dataset 'av_mnist': '{path}' must be mono 16-bit {SAMPLE_RATE} Hz, got "
                                f"{w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit, {w.getframerate()} Hz.")
        frames = w.getnframes()
        data = w.readframes(frames)
    if len(data) != 2 * frames or not frames:
        raise DataFileError(f"'{path}' is truncated or empty: its header announces {frames} samples, it holds "
                            f"{len(data) // 2}.")
    return np.frombuffer(data, dtype="<i2").astype("float32") / 32768.0


def spectrogram(waveforms):
    """log(1 + |STFT|) with window 400, stride 200, 201 bins, of float waveforms (n, samples) -> (n, frames, 201)."""
    return spectrogram_tensor(tf.constant(waveforms)).numpy()


def spectrogram_tensor(waveforms):
    """`spectrogram` as a TensorFlow op on a (batch, samples) float tensor."""
    return log_spectrogram(waveforms, WINDOW, STRIDE)


def pairs(split, data_dir, seed=0, num_pairs=None):
    """The sampled pairs of a split: dict of int arrays `image_index`, `audio_index`, `label`.

    Indices point into the pooled sources (MNIST train then test; FSDD recordings sorted by file name).
    """
    if num_pairs is not None and (int(num_pairs) != num_pairs or num_pairs < 1):
        raise ValueError(f"Dataset 'av_mnist': num_pairs must be a positive integer, got {num_pairs!r}.")
    images, image_labels, _, audio_labels, _, _ = _read_sources(os.path.abspath(data_dir))
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


@cache_watching(_folders)
def _source_tensors(data_dir):
    images, _, spectrograms, _, waveforms, lengths = _read_sources(data_dir)
    return tf.constant(images), tf.constant(spectrograms), tf.constant(waveforms), tf.constant(lengths)


def _spectra(waveforms):
    """STFT (window 400, stride 200) of (n, samples) waveforms as real and imaginary parts, float32 (n, frames, 402)."""
    stft = tf.signal.stft(waveforms, frame_length=WINDOW, frame_step=STRIDE, fft_length=WINDOW)
    return tf.concat([tf.math.real(stft), tf.math.imag(stft)], axis=-1)


@cache_watching(_folders)
def _recording_spectra(data_dir):
    """`_spectra` of the padded recordings."""
    return _spectra(_source_tensors(data_dir)[2])


class WaveformNoise:
    """White noise on the recordings, before padding and the spectrogram (Barnum et al., appendix A.3).

    Each recording x (front-padded with zeros to `samples`, starting at s = samples - length) gets
    x + sigma n on its own samples t >= s, sigma^2 = mean_{t >= s} x_t^2 / SNR, the padding staying silent; the
    model then sees log(1 + |STFT(x + sigma n (t >= s))|). The unit noise n is (b_i + b_j) / sqrt(2) for two
    distinct rows of a seeded bank of Gaussian waveforms, as every fixed-shape modality's (`noise.bank_noise`).

    The STFT is linear, so the pipeline adds spectra instead of taking one STFT per noisy recording: STFT(x) of every
    recording and STFT(b) of every bank row are computed once, a frame that lies wholly in the recording gets
    sigma (STFT(b_i) + STFT(b_j)) / sqrt(2), a frame wholly in the padding none, and the (at most two) frames that
    straddle s get the STFT of their masked noise, computed per batch. `reference` is the direct formulation
    (noise on the waveform, then `tf.signal.stft`); the two agree to float rounding. Spectra are held as real and
    imaginary parts side by side (float32 (..., 402)): complex arithmetic is several times slower on this CPU.

    The pipeline carries only the frames that overlap a recording's samples (`audio_frames`: example and frame of
    each row of `audio`; a short recording has few): the others are padding, zero before and after the noise.
    Called as the `RawDomain.noise` of `audio` on those raw features.
    """

    def __init__(self, waveforms, lengths, seed, rows=noise_lib.BANK_ROWS):
        self.waveforms, self.lengths = waveforms, lengths
        self.samples = int(waveforms.shape[1])
        self.powers = tf.reduce_sum(tf.square(waveforms), axis=1) / tf.cast(lengths, tf.float32)
        self.bank = tf.random.stateless_normal((rows, self.samples), [seed, INFO.modality_names.index("audio")])
        self.bank_spectra = tf.reshape(_spectra(self.bank), [-1, 2 * BINS])  # (rows * frames, 402)
        self.bank_frames = tf.reshape(tf.signal.frame(self.bank, WINDOW, STRIDE), [-1, WINDOW])  # (rows * frames, W)
        # One frame's windowed DFT (the STFT's periodic Hann window) as a (WINDOW, 402) matrix: [real | imaginary].
        t, k = np.arange(WINDOW)[:, None], np.arange(BINS)[None, :]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * t / WINDOW)
        angle = 2 * np.pi * t * k / WINDOW
        self.dft = tf.constant(np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window, tf.float32)

    def _scales(self, recordings, snr, seed):
        """Bank rows i, j, each recording's start s and sigma / sqrt(2)."""
        i, j = noise_lib.bank_rows(self.bank.shape[0], tf.shape(recordings)[0], seed)
        start = self.samples - tf.gather(self.lengths, recordings)
        return i, j, start, tf.sqrt(tf.gather(self.powers, recordings) / snr) * (0.5 ** 0.5)

    def __call__(self, features, snr, seed):
        recordings, rows, at = features["audio_recording"], features["audio"], features["audio_frames"]
        i, j, start, sigma = self._scales(recordings, snr, seed)
        example, frame = at[:, 0], at[:, 1]
        inside = tf.cast(STRIDE * frame >= tf.gather(start, example), tf.float32)  # wholly in the recording
        unit = (tf.gather(self.bank_spectra, tf.gather(i, example) * FRAMES + frame)
                + tf.gather(self.bank_spectra, tf.gather(j, example) * FRAMES + frame))
        noisy = rows + (tf.gather(sigma, example) * inside)[:, None] * unit
        # The frames that can straddle the recording's start, floor((s - 1) / STRIDE) and the one before, get the
        # spectrum of their masked noise.
        last = tf.math.floordiv(start - 1, STRIDE)
        straddle = tf.clip_by_value(tf.stack([last - 1, last], axis=1), 0, FRAMES - 1)  # (batch, 2)
        noise = (tf.gather(self.bank_frames, i[:, None] * FRAMES + straddle)
                 + tf.gather(self.bank_frames, j[:, None] * FRAMES + straddle))  # (batch, 2, WINDOW)
        positions = STRIDE * straddle[..., None] + tf.range(WINDOW)
        support = tf.cast(positions >= start[:, None, None], tf.float32)
        exact = tf.matmul(noise * support, self.dft)  # (batch, 2, 402): one frame's STFT as a matmul
        offset = frame - tf.gather(last - 1, example)  # 0 or 1 on a straddling frame
        straddling = tf.cast((offset >= 0) & (offset <= 1), tf.float32)
        correction = tf.gather_nd(exact, tf.stack([example, tf.clip_by_value(offset, 0, 1)], axis=1))
        noisy = noisy + (tf.gather(sigma, example) * straddling)[:, None] * correction
        return {**features, "audio": noisy}

    def reference(self, recordings, snr, seed):
        """The direct formulation on the padded waveforms of `recordings`: (batch, frames, 201) spectrograms."""
        i, j, start, sigma = self._scales(recordings, snr, seed)
        support = tf.cast(tf.range(self.samples)[None, :] >= start[:, None], tf.float32)
        noisy = tf.gather(self.waveforms, recordings) + sigma[:, None] * (
            tf.gather(self.bank, i) + tf.gather(self.bank, j)) * support
        return spectrogram_tensor(noisy)


@cache_watching(_folders)
def _waveform_noise(data_dir, seed):
    _, _, waveforms, lengths = _source_tensors(data_dir)
    return WaveformNoise(waveforms, lengths, seed)


def finish(features):
    """Raw features to the model's: log(1 + |STFT|) of the frames given, zero on the others (silent padding)."""
    features = dict(features)
    rows, at, recordings = features.pop("audio"), features.pop("audio_frames"), features.pop("audio_recording")
    real, imaginary = rows[:, :BINS], rows[:, BINS:]
    magnitude = tf.math.log1p(tf.sqrt(real * real + imaginary * imaginary))
    return {**features, "audio": tf.scatter_nd(at, magnitude, [tf.shape(recordings)[0], FRAMES, BINS])}


def load_split(split, data_dir, seed=0, num_pairs=None):
    """Loader of `av_mnist`; `num_pairs` overrides the number of pairs drawn for the split."""
    data_dir = os.path.abspath(data_dir)
    images, spectrograms, waveforms, lengths = _source_tensors(data_dir)
    table = pairs(split, data_dir, seed, num_pairs)
    image_index, audio_index = tf.constant(table["image_index"]), tf.constant(table["audio_index"])
    labels = tf.constant(table["label"])

    def image(indices):
        return tf.cast(tf.gather(images, tf.gather(image_index, indices)), tf.float32)[..., None]

    def fetch(indices):
        audio = tf.gather(spectrograms, tf.gather(audio_index, indices))
        return {"image": image(indices), "audio": audio}, tf.gather(labels, indices)

    def raw():
        samples = int(waveforms.shape[1])
        flat_spectra = tf.reshape(_recording_spectra(data_dir), [-1, 2 * BINS])

        def raw_fetch(indices):
            # Only the frames that overlap a recording's samples: the others are padding, silent with or without
            # noise.
            recordings = tf.cast(tf.gather(audio_index, indices), tf.int32)
            first = tf.maximum(tf.math.floordiv(samples - tf.gather(lengths, recordings) - WINDOW, STRIDE) + 1, 0)
            at = tf.cast(tf.where(tf.range(FRAMES)[None, :] >= first[:, None]), tf.int32)  # (rows, 2): example, frame
            rows = tf.gather(flat_spectra, tf.gather(recordings, at[:, 0]) * FRAMES + at[:, 1])
            return ({"image": image(indices), "audio": rows, "audio_frames": at, "audio_recording": recordings},
                    tf.gather(labels, indices))

        return RawDomain(raw_fetch, {"audio": _waveform_noise(data_dir, seed)}, finish)

    return Source(len(table["label"]), fetch, raw, raw_modalities=("audio",))


register_dataset(INFO, load_split)
