"""Helpers shared by the loaders of word-aligned feature sequences (CMU-MOSI, CMU-MOSEI, UR-FUNNY).

Conventions of every such loader:
- Non-finite values become 0. The public COVAREP features contain -inf (log-energies of silent frames); MulT and
  MMSA zero them the same way.
- Sequences have a fixed length per file: the pickles' own (50 words for the aligned MulT / MMSA files), or
  `max_len` for formats stored per segment. Shorter sequences are padded with zeros at the front and longer ones
  keep their last `max_len` steps, so the last step is always real data (MulT and MMLatch read the last step).
  A padding step is all zeros in every feature; the real steps are those from the first step holding a non-zero
  value (`real_steps`), so a real all-zero step inside a sequence counts as real.
- `normalize=True` standardises every feature with the mean and standard deviation of the training split over
  real steps (features with zero deviation are only centred); padding stays 0; the default keeps the published
  features.
"""

import numpy as np

LENGTHS = "_lengths"  # an array `<modality>_lengths` gives a variable-length modality's real steps per example


def finite(x):
    """float32 copy of x with NaN and +-inf replaced by 0."""
    return np.nan_to_num(np.asarray(x, dtype="float32"), nan=0.0, posinf=0.0, neginf=0.0)


def front_pad(steps, length):
    """(n, D) -> (length, D): zeros in front of short sequences, the last `length` steps of long ones."""
    steps = finite(steps).reshape(len(steps), -1) if len(steps) else np.zeros((0, 1), "float32")
    out = np.zeros((length, steps.shape[1]), dtype="float32")
    kept = steps[-length:]
    if len(kept):
        out[length - len(kept):] = kept
    return out


def real_steps(x, lengths=None):
    """(n, T) mask of the real steps of front-padded sequences x (n, T, ...): the last `lengths[i]` steps of row i,
    or without lengths, the steps from the first one holding a non-zero value (`multisensory.datasets.noise`)."""
    x = np.asarray(x)
    if lengths is not None:
        return np.arange(x.shape[1])[None, :] >= x.shape[1] - np.asarray(lengths).reshape(-1, 1)
    return np.cumsum(np.any(x.reshape(x.shape[0], x.shape[1], -1) != 0, axis=-1), axis=1) > 0


def standardize(splits, modalities):
    """Standardises `splits[split][0][m]` in place for each modality with training-split statistics.

    Args:
        splits: {split: (features {modality: (n, T, D)}, labels)}.
        modalities: names to standardise.
    """
    for m in modalities:
        train = splits["train"][0][m]
        steps = train[real_steps(train)]
        mean, std = steps.mean(0), steps.std(0)
        std = np.where(std > 0, std, 1.0)
        for features, _ in splits.values():
            x = features[m]
            features[m] = np.where(real_steps(x)[..., None], (x - mean) / std, 0.0).astype("float32")
