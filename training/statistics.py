"""Statistics of a comparison over seeds (`multisensory benchmark`): summaries with intervals, and paired tests.

- `summary(values)`: mean, sample standard deviation (ddof 1), and the 95% interval of the mean from Student's t
  with n - 1 degrees of freedom (mean +- t_{0.975, n-1} * std / sqrt(n)); one value has no spread (std and interval
  None).
- `paired_t(a, b)`: the two-sided paired t-test of mean(a - b) = 0 over runs that share their seeds (and so their
  data order and initial draws): t = mean(d) / (std(d) / sqrt(n)), p from Student's t with n - 1 degrees of freedom.
  Differences that are all equal have no spread: p = 1 when they are all 0, else 0.
- `paired_bootstrap(correct_a, correct_b)`: for few seeds, a test over the test examples of one seed: the examples
  are resampled with replacement `resamples` times (seeded), the difference of the two models' accuracies recomputed
  on each resample; the two-sided p-value is twice the smaller share of resampled differences on either side of 0
  (at most 1), and the 95% interval is the 2.5th and 97.5th percentiles.
- `verdict(p, difference, alpha=0.05)`: "better", "worse" or "not distinguishable at 5%".
"""

import math

import numpy as np
from scipy import stats

ALPHA = 0.05


def summary(values, confidence=0.95):
    """{"n", "mean", "std", "interval": [low, high] or None} of a metric over seeds."""
    values = np.asarray(values, dtype="float64")
    n, mean = len(values), float(values.mean())
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "interval": None}
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "interval": [mean - half, mean + half]}


def paired_t(a, b):
    """{"test": "paired t", "n", "difference" (mean of a - b), "t", "p"} over paired runs."""
    d = np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64")
    n = len(d)
    if n < 2:
        raise ValueError(f"A paired t-test needs two pairs or more, got {n}.")
    spread = d.std(ddof=1)
    if spread == 0:
        t, p = (0.0, 1.0) if not d.any() else (math.copysign(math.inf, d.mean()), 0.0)
    else:
        t = float(d.mean() / (spread / math.sqrt(n)))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    return {"test": "paired t over seeds", "n": n, "difference": float(d.mean()), "t": t, "p": p}


def paired_bootstrap(correct_a, correct_b, resamples=2000, seed=0):
    """{"test", "n", "difference", "interval", "p"} of accuracy(a) - accuracy(b) over the same test examples
    (`correct_*`: 1 where the model's prediction is right, per example; or any per-example score)."""
    a, b = np.asarray(correct_a, dtype="float64"), np.asarray(correct_b, dtype="float64")
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"The paired bootstrap needs two per-example scores of one length, got {a.shape}, {b.shape}.")
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean()))) if d.any() else 1.0
    low, high = np.percentile(means, [2.5, 97.5])
    return {"test": "paired bootstrap over test examples", "n": len(d), "difference": float(d.mean()),
            "interval": [float(low), float(high)], "p": p}


def verdict(p, difference, alpha=ALPHA):
    """"better" / "worse" when p < alpha (by the sign of the difference), else "not distinguishable at 5%"."""
    if p < alpha and difference != 0:
        return "better" if difference > 0 else "worse"
    return f"not distinguishable at {alpha:.0%}"
