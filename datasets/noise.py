"""Seeded noise transforms on batched `({modality: tensor}, label)` datasets.

Signal-to-noise ratio (SNR) is a plain power ratio, not decibels, measured per example:

    SNR = P_signal / P_noise,   P_signal = mean(x ** 2) over the example's real elements,

so white noise n ~ N(0, sigma^2) with sigma^2 = P_signal / SNR is added to every real element. The papers leave SNR
undefined (Barnum et al. 2020 give only the ratios they train at, audio 0.5 and image 0.25); this per-example power
ratio is the zoo's reading. SNR 0.5 means the noise carries twice the power of the signal. An all-zero example stays
zero.

Real elements: every element of a fixed-shape modality; of a sequence (`sequences`: axis 1 counts steps), the steps
that `lengths` say are real, or where a batch carries no lengths, the steps from the first one holding a non-zero
value to the end. The zoo's sequences are front-padded with all-zero steps (`datasets.sequence_features`, folder
datasets), so that rule counts a real all-zero step inside a sequence as real, and only all-zero steps before the
first non-zero one as padding, as the models' padding masks do (`zoo.sentiment.sequence_lstm.padding_mask`).
Padding steps get no noise and stay exactly zero, and their zeros do not dilute the signal's power.

`float("inf")` or `None` leaves a modality untouched; SNRs below `MIN_SNR` (1e-30) are refused, since their noise
overflows float32.

A dataset may define the noise of a modality in a raw domain (`registry.RawDomain`): `av_mnist`'s audio noise
goes on each recording's own samples, before the silent front padding and the spectrogram, as in Barnum et al.'s
appendix A.3 (`multisensory.datasets.av_mnist`). Its `finish` then gives the model's features, before corruptions
and dropout.

Modality dropout replaces a modality with its absent value: for each example with probability p, or always for the
named modalities in `drop` (Barnum et al. build unimodal baselines this way). The absent value is zero (for a
sequence: every step padding), except for a fixed-shape modality that the model standardises (`Modality.standardize`),
whose absent value is the training mean, so that it reaches the model as exactly 0 after standardisation while a real
zero (a black pixel) is standardised like any other value (`zoo.fusion_model.Standardize`). Noise is applied before
dropout, so a dropped modality is exactly its absent value.

Drawing Gaussian values is the slow part of a pipeline (about 80 M/s on two cores: 7,000 `av_mnist` spectrograms
per second, slower than a small model trains), so `augment` draws them once: per modality of fixed shape, a bank
of `BANK_ROWS` arrays of i.i.d. N(0, 1) values is drawn from the seed, and each example's unit noise is
(B[i] + B[j]) / sqrt(2) for two distinct rows i != j drawn per example. That is again i.i.d. N(0, 1) within the
example, with 1024 * 1023 / 2 = 523,776 different noise patterns; two examples sharing a row have noise correlated
by 0.5. Modalities of variable shape draw fresh values for every batch. `white_noise` draws fresh values always.

Randomness: one seed pair per batch is drawn from `tf.data.Dataset.random(seed)`, then folded with the modality's
position and the transform, and every random tensor is drawn with stateless ops. The same seed, batch size and
options give the same tensors. With `rerandomize=True` (training augmentation) each pass over the data (epoch)
draws new noise, still determined by the seed; with `rerandomize=False` (evaluation) every pass is identical.
"""

import math

import tensorflow as tf

from .corruptions import CORRUPTIONS

_NOISE, _DROPOUT, _CORRUPTION = 0, 1, 2
BANK_ROWS = 1024
# The smallest SNR: below it the noise's standard deviation sqrt(P / SNR) overflows float32 (3.4e38) for signals of
# power up to 1e8, and every input would become +-inf.
MIN_SNR = 1e-30


def real_steps(x, lengths=None):
    """(batch, T) mask of a front-padded sequence's real steps: the last `lengths[i]` steps of row i, or without
    lengths, the steps from the first one holding a non-zero value (see the module docstring)."""
    steps = tf.shape(x)[1]
    if lengths is not None:
        return tf.range(steps)[None, :] >= steps - tf.cast(tf.reshape(lengths, [-1, 1]), tf.int32)
    nonzero = tf.reduce_any(tf.reshape(x != 0, [tf.shape(x)[0], steps, -1]), axis=-1)
    return tf.cumsum(tf.cast(nonzero, tf.int32), axis=1) > 0


def add_at_snr(x, unit_noise, snr, real=None):
    """x + sigma * unit_noise with sigma^2 = P_signal / snr per example; `unit_noise` has unit variance.

    `real`, a (batch, T) mask of a sequence's real steps (`real_steps`), limits the power and the noise to them.
    """
    axes = list(range(1, len(x.shape)))
    if real is None:
        power = tf.reduce_mean(tf.square(x), axis=axes, keepdims=True)
        return x + tf.sqrt(power / snr) * unit_noise
    weights = tf.reshape(tf.cast(real, x.dtype), tf.concat([tf.shape(real), tf.ones([len(x.shape) - 2], tf.int32)], 0))
    count = tf.reduce_sum(weights * tf.ones_like(x), axis=axes, keepdims=True)
    power = tf.reduce_sum(tf.square(x) * weights, axis=axes, keepdims=True) / tf.maximum(count, 1.0)
    return x + tf.sqrt(power / snr) * unit_noise * weights


def white_noise(x, snr, seed, real=None):
    """Adds white Gaussian noise to a batch so that each example has the given power SNR.

    Args:
        x: float tensor (batch, ...).
        snr: float > 0. Signal power over noise power, as a ratio.
        seed: int tensor (2,). Stateless seed.
        real: (batch, T) bool or None. A sequence's real steps (`real_steps`); None for every element.
    """
    return add_at_snr(x, tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype), snr, real)


def bank_rows(rows, batch_size, seed):
    """Two distinct rows (i, j) of a bank of `rows` per example, each (batch,) int32."""
    i = tf.random.stateless_uniform([batch_size], seed, 0, rows, tf.int32)
    offset = tf.random.stateless_uniform([batch_size], tf.random.experimental.stateless_fold_in(seed, 1), 1, rows,
                                         tf.int32)
    return i, (i + offset) % rows


def bank_noise(bank, batch_size, seed):
    """Unit Gaussian noise (B[i] + B[j]) / sqrt(2), rows i != j of `bank` drawn per example."""
    i, j = bank_rows(bank.shape[0], batch_size, seed)
    return (tf.gather(bank, i) + tf.gather(bank, j)) * (0.5 ** 0.5)


def dropout_modality(x, p, seed, absent=None):
    """Replaces whole examples of a batch with `absent` (zeros when None) with probability p each (p = 1 drops every
    example)."""
    keep = tf.random.stateless_uniform(tf.shape(x)[:1], seed) >= p
    keep = tf.reshape(keep, [-1] + [1] * (len(x.shape) - 1))
    return tf.where(keep, x, tf.zeros_like(x) if absent is None else tf.broadcast_to(tf.cast(absent, x.dtype),
                                                                                     tf.shape(x)))


def _check_setting(name, setting, modalities, low, high, inclusive_low):
    setting = dict(setting or {})
    for modality, value in setting.items():
        if modality not in modalities:
            raise ValueError(f"{name}: unknown modality '{modality}'; the dataset's modalities are {list(modalities)}.")
        if value is None:
            continue
        ok_low = value >= low if inclusive_low else value > low
        if not (ok_low and value <= high):
            raise ValueError(f"{name} for modality '{modality}' must lie in "
                             f"{'[' if inclusive_low else '('}{low}, {high}], got {value}.")
    return setting


def _check_corruptions(corruptions, modalities):
    corruptions = {m: dict(c) for m, c in (corruptions or {}).items()}
    _check_setting("Corruptions", dict.fromkeys(corruptions), modalities, 0.0, 1.0, True)
    for modality, setting in corruptions.items():
        unknown = sorted(set(setting) - set(CORRUPTIONS))
        if unknown:
            raise ValueError(f"Unknown corruption(s) {unknown} for modality '{modality}'; "
                             f"known corruptions: {list(CORRUPTIONS)}.")
        for name, severity in setting.items():
            if not 0.0 <= severity <= 1.0:
                raise ValueError(f"Severity of {name} for modality '{modality}' must lie in [0, 1], got {severity}.")
    return corruptions


def augment(dataset, modalities, snr=None, dropout=None, drop=(), corruptions=None, seed=0, rerandomize=False,
            raw_noise=None, finish=None, sequences=(), absent=None):
    """Applies per-modality white noise, corruptions and modality dropout to a batched dataset, in that order.

    Args:
        dataset: batched `tf.data.Dataset` of `({modality: tensor}, label)`, or of `({modality: tensor}, label,
            {modality: lengths (batch,)})` where a source knows its sequences' real steps; the lengths are used for
            the noise and dropped from the output.
        modalities: sequence of str. The dataset's modality names (used to check the settings).
        snr: dict. Modality to SNR (power ratio); missing, `None` or `inf` means no noise.
        dropout: dict. Modality to probability of zeroing it per example.
        drop: iterable of str. Modalities zeroed in every example.
        corruptions: dict. Modality to {corruption name: severity in [0, 1]} (see `corruptions.CORRUPTIONS`).
        seed: int. Seed of all randomness.
        rerandomize: bool. Draw new noise on each pass over the data (training) or repeat it (evaluation).
        raw_noise: dict. Modality to the dataset's own noise `noise(features, snr, seed) -> features`, acting on the
            raw form of `dataset`'s features (see the module docstring).
        finish: callable or None. Maps the raw features after noise to the dataset's features; runs before
            corruptions and dropout.
        sequences: iterable of str. The modalities whose axis 1 counts front-padded steps: their noise goes on the
            real steps only (see the module docstring).
        absent: dict. Modality to what a dropped example holds instead of zeros, broadcast to its shape (`load`
            gives the training mean of a modality the model standardises, so that it reaches the model as 0).
    """
    modalities = list(modalities)
    snr = {m: v for m, v in _check_setting("SNR", snr, modalities, MIN_SNR, math.inf, True).items()
           if v is not None and not math.isinf(v)}
    dropout = {m: v for m, v in _check_setting("Modality dropout", dropout, modalities, 0.0, 1.0, True).items() if v}
    drop = _check_setting("drop", {m: 1.0 for m in drop}, modalities, 0.0, 1.0, True)
    corruptions = _check_corruptions(corruptions, modalities)
    raw_noise, sequences, absent = dict(raw_noise or {}), set(sequences), dict(absent or {})
    with_lengths = len(dataset.element_spec) == 3
    if with_lengths:
        dataset = dataset.map(lambda x, y, lengths: ((x, lengths), y))
    if not (snr or dropout or drop or corruptions):
        def plain(x, y):
            x = x[0] if with_lengths else x
            return (x if finish is None else finish(x)), y

        return dataset.map(plain, tf.data.AUTOTUNE, deterministic=True) if with_lengths or finish else dataset

    spec = dataset.element_spec[0][0] if with_lengths else dataset.element_spec[0]
    banks = {m: tf.random.stateless_normal((BANK_ROWS,) + tuple(spec[m].shape[1:]), [seed, i], dtype=spec[m].dtype)
             for i, m in enumerate(modalities)
             if m in snr and m not in raw_noise and spec[m].shape[1:].is_fully_defined()}

    def apply(element, batch_seed):
        features, label = element
        features, lengths = features if with_lengths else (features, {})
        features = dict(features)
        for index, modality in enumerate(modalities):
            if modality not in snr:
                continue
            x, noise_seed = features[modality], _fold(batch_seed, index, _NOISE)
            real = real_steps(x, lengths.get(modality)) if modality in sequences else None
            if modality in raw_noise:
                features = dict(raw_noise[modality](features, snr[modality], noise_seed))
            elif modality in banks:
                features[modality] = add_at_snr(x, bank_noise(banks[modality], tf.shape(x)[0], noise_seed),
                                                snr[modality], real)
            else:
                features[modality] = white_noise(x, snr[modality], noise_seed, real)
        if finish is not None:
            features = dict(finish(features))
        for index, modality in enumerate(modalities):
            x = features[modality]
            for name, severity in corruptions.get(modality, {}).items():
                x = CORRUPTIONS[name](x, severity, _fold(batch_seed, index, _CORRUPTION + list(CORRUPTIONS).index(name)))
            if modality in drop:
                x = dropout_modality(x, 1.0, _fold(batch_seed, index, _DROPOUT), absent.get(modality))
            elif modality in dropout:
                x = dropout_modality(x, dropout[modality], _fold(batch_seed, index, _DROPOUT), absent.get(modality))
            features[modality] = x
        return features, label

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=rerandomize).batch(2)
    return tf.data.Dataset.zip((dataset, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _fold(seed, index, transform):
    return tf.random.experimental.stateless_fold_in(tf.random.experimental.stateless_fold_in(seed, index), transform)
