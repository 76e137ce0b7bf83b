"""What a user has, turned into a model's features: the `raw` spec of a `Modality`.

Most preprocessing is a per-feature scaling, which a model does itself (`Modality.standardize`: HIGGS' training
statistics, pixel values over 255). What changes a modality's shape is described by its `raw` spec and applied by
`FusionModel.preprocess` and the exports' serving functions, while training reads the features the pipeline makes
(its noise acts where each paper puts it). One kind exists:

- `"waveform"`: a mono recording, float samples in [-1, 1] at `sample_rate` Hz, of any length up to `samples`. It is
  front-padded with zeros to `samples` and turned into log(1 + |STFT|) with a periodic Hann window of `window`
  samples, stride `stride` and an FFT of `window` points: what `av_mnist` feeds its models (Barnum et al. 2020,
  section 4). A batch of recordings of different lengths comes right-padded with a mask (1 on a recording's
  samples, 0 after them); without a mask every row is one whole recording.
"""

import tensorflow as tf

RAW_KINDS = {"waveform": ("samples", "sample_rate", "window", "stride")}


def check_raw(name, spec):
    """The `raw` spec of modality `name`, checked: a known kind and exactly its keys."""
    kind = spec.get("kind")
    if kind not in RAW_KINDS:
        raise ValueError(f"Modality '{name}': raw kind must be one of {sorted(RAW_KINDS)}, got {kind!r}.")
    expected = {"kind", *RAW_KINDS[kind]}
    if set(spec) != expected:
        raise ValueError(f"Modality '{name}': a raw {kind!r} spec has the keys {sorted(expected)}, got {sorted(spec)}.")
    return spec


def log_spectrogram(waveforms, window, stride):
    """log(1 + |STFT|) of float waveforms (batch, samples) -> (batch, frames, window // 2 + 1)."""
    stft = tf.signal.stft(waveforms, frame_length=window, frame_step=stride, fft_length=window)
    return tf.math.log1p(tf.abs(stft))


def serving_spec(modality):
    """(`tf.TensorSpec` of what a user sends for `modality`, whether it takes a `<modality>_mask`)."""
    if modality.raw is None:
        return tf.TensorSpec((None,) + tuple(modality.shape), modality.dtype, name=modality.name), False
    return tf.TensorSpec((None, None), tf.float32, name=modality.name), True


def front_pad(x, mask, samples, name):
    """Right-padded rows (batch, n) with their mask (or none: whole rows) -> each row's values front-padded with
    zeros to `samples` (batch, samples); a row longer than `samples` is refused, naming the modality."""
    if mask is not None:
        tf.debugging.assert_equal(tf.shape(mask), tf.shape(x), message=(
            f"{name}_mask must have the shape of {name}"))
    x = tf.pad(x, [[0, 0], [0, 1]])  # one spare zero column, so that an empty batch or length still gathers
    n = tf.shape(x)[1] - 1
    lengths = (tf.fill([tf.shape(x)[0]], n) if mask is None
               else tf.reduce_sum(tf.cast(tf.not_equal(mask, 0), tf.int32), axis=1))
    tf.debugging.assert_less_equal(lengths, samples, message=(
        f"Modality {name}: a recording is longer than {samples} samples, the longest the model takes"))
    source = tf.range(samples)[None, :] - (samples - lengths)[:, None]
    values = tf.gather(x, tf.clip_by_value(source, 0, n), batch_dims=1)
    return tf.where(source >= 0, values, tf.zeros_like(values))


def to_features(modality, x, mask=None):
    """The model's features for `modality` from what a user has (see the module docstring)."""
    if modality.raw is None:
        return x
    raw = dict(modality.raw)
    waveforms = front_pad(tf.cast(x, tf.float32), mask, raw["samples"], modality.name)
    return log_spectrogram(waveforms, raw["window"], raw["stride"])
