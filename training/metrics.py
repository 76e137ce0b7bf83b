"""Keras metrics of the zoo's tasks, with their definitions.

Classification (labels are integer classes, predictions are logits (batch, K)):
- `accuracy`: fraction of examples whose arg-max class is the label.
- `error`: 1 - accuracy.
- `auc`: ROC AUC of the softmax probabilities. Two classes: AUC of the probability of class 1. More classes:
  micro-averaged one-vs-rest AUC (every (example, class) pair is one binary decision).

Sentiment regression (labels and predictions are scores in [-3, 3], as in CMU-MOSI/MOSEI; definitions as in MulT
and MMSA):
- `mae`: mean absolute error.
- `pearson`: Pearson correlation between predictions and labels over the whole evaluation.
- `acc2_has0` / `f1_has0`: binary accuracy / weighted F1 of negative (< 0) against non-negative (>= 0).
- `acc2_non0` / `f1_non0`: the same for negative (< 0) against positive (> 0), examples labelled exactly 0 excluded.
- `acc5` / `acc7`: accuracy after clipping to [-2, 2] / [-3, 3] and rounding to the nearest integer (halves to
  even, as NumPy rounds), i.e. 5 / 7 classes.
Weighted F1 is the support-weighted mean of the F1 of both classes (scikit-learn's `average="weighted"`; a class
with no prediction and no label counts F1 = 0).
"""

import keras
from keras import ops

_SERIALIZABLE = keras.saving.register_keras_serializable(package="multisensory")


def _flat(x):
    return ops.reshape(ops.cast(x, "float32"), (-1,))


def _weights(y, sample_weight):
    return ops.ones_like(y) if sample_weight is None else _flat(sample_weight)


@_SERIALIZABLE
class Error(keras.metrics.SparseCategoricalAccuracy):
    """Classification error, 1 - accuracy, of logits or probabilities against integer labels."""

    def __init__(self, name="error", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return 1.0 - super().result()


@_SERIALIZABLE
class SparseAUC(keras.metrics.AUC):
    """ROC AUC of logits (batch, K) against integer labels; see the module docstring for K > 2.

    Args:
        num_classes: int. K.
        from_logits: bool. Whether predictions are logits (softmax applied) or probabilities.
    """

    def __init__(self, num_classes, from_logits=True, name="auc", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes, self.sparse_from_logits = num_classes, from_logits

    def update_state(self, y_true, y_pred, sample_weight=None):
        probs = ops.softmax(y_pred, axis=-1) if self.sparse_from_logits else y_pred
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        if self.num_classes == 2:
            return super().update_state(labels[:, 1], probs[:, 1], sample_weight)
        if sample_weight is not None:
            sample_weight = ops.repeat(ops.reshape(sample_weight, (-1, 1)), self.num_classes, axis=1)
            sample_weight = ops.reshape(sample_weight, (-1,))
        return super().update_state(ops.reshape(labels, (-1,)), ops.reshape(probs, (-1,)), sample_weight)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "from_logits": self.sparse_from_logits}


class _Counts(keras.metrics.Metric):
    """A metric kept as weighted sums, in one float32 vector (one update per batch), read by name."""

    _sums = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sums = self.add_variable(shape=(len(self._sums),), initializer="zeros", name="sums")

    def _add(self, **values):
        self.sums.assign_add(ops.sum(ops.stack([values[s] for s in self._sums]), axis=1))

    def _read(self):
        return dict(zip(self._sums, ops.unstack(ops.convert_to_tensor(self.sums))))

    def reset_state(self):
        self.sums.assign(ops.zeros_like(self.sums))


@_SERIALIZABLE
class PearsonCorrelation(_Counts):
    """Pearson correlation of predictions and labels, accumulated over all batches."""

    _sums = ("n", "sx", "sy", "sxx", "syy", "sxy")

    def __init__(self, name="pearson", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, x = _flat(y_true), _flat(y_pred)
        w = _weights(y, sample_weight)
        self._add(n=w, sx=w * x, sy=w * y, sxx=w * x * x, syy=w * y * y, sxy=w * x * y)

    def result(self):
        s = self._read()
        n = s["n"]
        cov = s["sxy"] - s["sx"] * s["sy"] / n
        var_x, var_y = s["sxx"] - s["sx"] ** 2 / n, s["syy"] - s["sy"] ** 2 / n
        return cov / ops.sqrt(ops.maximum(var_x * var_y, 1e-12))


class _SentimentBinary(_Counts):
    """Confusion counts of the sign of sentiment scores (see the module docstring for has-0 / non-0)."""

    _sums = ("tp", "fp", "fn", "tn")

    def __init__(self, exclude_zero=False, name=None, **kwargs):
        self.exclude_zero = exclude_zero
        super().__init__(name=name or f"{self._prefix}_{'non0' if exclude_zero else 'has0'}", **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, x = _flat(y_true), _flat(y_pred)
        w = _weights(y, sample_weight)
        if self.exclude_zero:
            w = w * ops.cast(ops.not_equal(y, 0.0), "float32")
            truth, pred = ops.cast(y > 0, "float32"), ops.cast(x > 0, "float32")
        else:
            truth, pred = ops.cast(y >= 0, "float32"), ops.cast(x >= 0, "float32")
        self._add(tp=w * truth * pred, fp=w * (1 - truth) * pred, fn=w * truth * (1 - pred),
                  tn=w * (1 - truth) * (1 - pred))

    def get_config(self):
        return {**super().get_config(), "exclude_zero": self.exclude_zero}


@_SERIALIZABLE
class SentimentBinaryAccuracy(_SentimentBinary):
    """Acc-2 of sentiment scores: has-0 (`exclude_zero=False`) or non-0 (`exclude_zero=True`)."""

    _prefix = "acc2"

    def result(self):
        s = self._read()
        return (s["tp"] + s["tn"]) / ops.maximum(s["tp"] + s["fp"] + s["fn"] + s["tn"], 1e-12)


@_SERIALIZABLE
class SentimentBinaryF1(_SentimentBinary):
    """Weighted F1 of sentiment signs: has-0 (`exclude_zero=False`) or non-0 (`exclude_zero=True`)."""

    _prefix = "f1"

    def result(self):
        s = self._read()
        tp, fp, fn, tn = s["tp"], s["fp"], s["fn"], s["tn"]
        positives, negatives = tp + fn, tn + fp
        f1_pos = 2 * tp / ops.maximum(2 * tp + fp + fn, 1e-12)
        f1_neg = 2 * tn / ops.maximum(2 * tn + fn + fp, 1e-12)
        return (positives * f1_pos + negatives * f1_neg) / ops.maximum(positives + negatives, 1e-12)


@_SERIALIZABLE
class SentimentClassAccuracy(_Counts):
    """Acc-5 (`num_classes=5`, clip to [-2, 2]) or Acc-7 (`num_classes=7`, clip to [-3, 3]) of sentiment scores."""

    _sums = ("correct", "total")

    def __init__(self, num_classes=7, name=None, **kwargs):
        if num_classes not in (5, 7):
            raise ValueError(f"num_classes must be 5 or 7, got {num_classes}.")
        self.num_classes = num_classes
        super().__init__(name=name or f"acc{num_classes}", **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        bound = (self.num_classes - 1) / 2
        y, x = (ops.round(ops.clip(_flat(v), -bound, bound)) for v in (y_true, y_pred))
        w = _weights(y, sample_weight)
        self._add(correct=w * ops.cast(ops.equal(x, y), "float32"), total=w)

    def result(self):
        s = self._read()
        return s["correct"] / ops.maximum(s["total"], 1e-12)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


_FACTORIES = {
    "accuracy": lambda task: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    "error": lambda task: Error(),
    "auc": lambda task: SparseAUC(task.num_classes),
    "mae": lambda task: keras.metrics.MeanAbsoluteError(name="mae"),
    "pearson": lambda task: PearsonCorrelation(),
    "acc2_has0": lambda task: SentimentBinaryAccuracy(exclude_zero=False),
    "acc2_non0": lambda task: SentimentBinaryAccuracy(exclude_zero=True),
    "f1_has0": lambda task: SentimentBinaryF1(exclude_zero=False),
    "f1_non0": lambda task: SentimentBinaryF1(exclude_zero=True),
    "acc5": lambda task: SentimentClassAccuracy(5),
    "acc7": lambda task: SentimentClassAccuracy(7),
}
_DEFAULTS = {"classification": ("accuracy", "error", "auc"), "regression": ("mae", "pearson")}


MINIMISED = ("mae", "error", "loss")  # every other metric is better when larger


def selection_metric(task):
    """(monitor, mode) of model selection: the validation value of the task's main (first) metric, e.g.
    ("val_accuracy", "max") or ("val_mae", "min"). Not `val_loss`, which holds training-only terms such as the
    synergy regulariser's beta L_reg."""
    name = (task.metrics or _DEFAULTS[task.type])[0]
    return f"val_{name}", "min" if name in MINIMISED else "max"


def task_metrics(task):
    """Fresh metric objects for a `Task`: the names in `task.metrics`, else the defaults of its type."""
    names = task.metrics or _DEFAULTS[task.type]
    unknown = [n for n in names if n not in _FACTORIES]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; known metrics: {sorted(_FACTORIES)}.")
    return [_FACTORIES[n](task) for n in names]
