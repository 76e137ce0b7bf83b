"""Metrics against values computed by hand on tiny inputs."""

import keras
import numpy as np
import pytest

from multisensory.datasets import Task
from multisensory.training import metrics as M
from multisensory.training.metrics import task_metrics


def value(metric, y_true, y_pred, sample_weight=None, split=False):
    metric.reset_state()
    y_true, y_pred = np.asarray(y_true, "float32"), np.asarray(y_pred, "float32")
    if split:  # two batches: streaming accumulation must match one batch
        h = len(y_true) // 2
        metric.update_state(y_true[:h], y_pred[:h])
        metric.update_state(y_true[h:], y_pred[h:])
    else:
        metric.update_state(y_true, y_pred, sample_weight)
    return float(metric.result())


TRUTH = [2.0, -1.0, 0.0, 0.6, -2.4, 1.5]
PRED = [1.0, 0.5, -0.2, 0.4, -3.4, 2.6]


def test_error_is_one_minus_accuracy():
    logits = [[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [0.0, 0.0, 5.0]]
    assert value(M.Error(), [0, 1, 0, 1], logits) == pytest.approx(0.5)


def test_auc_binary_and_micro_average():
    # Binary: class-1 probabilities of the positives 0.8, 0.4 and of the negatives 0.6, 0.1.
    # (positive, negative) pairs ranked right: (0.8, 0.6), (0.8, 0.1), (0.4, 0.1) = 3 of 4.
    p1 = np.array([0.8, 0.4, 0.6, 0.1])
    probs = np.stack([1 - p1, p1], 1)
    auc = M.SparseAUC(2, from_logits=False, num_thresholds=2001)
    assert value(auc, [1, 1, 0, 0], probs) == pytest.approx(0.75, abs=1e-3)
    logits = np.log(probs)
    assert value(M.SparseAUC(2, num_thresholds=2001), [1, 1, 0, 0], logits) == pytest.approx(0.75, abs=1e-3)
    # Three classes, micro-averaged: 6 (example, class) scores, positives {0.7, 0.6} vs negatives {0.2, 0.1, 0.3,
    # 0.1}: every positive above every negative -> 1.0.
    probs3 = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1]])
    assert value(M.SparseAUC(3, from_logits=False, num_thresholds=2001), [0, 1], probs3) == pytest.approx(1.0)


def test_pearson_matches_numpy_and_streams():
    expected = np.corrcoef(TRUTH, PRED)[0, 1]
    assert value(M.PearsonCorrelation(), TRUTH, PRED) == pytest.approx(expected, rel=1e-5)
    assert value(M.PearsonCorrelation(), TRUTH, PRED, split=True) == pytest.approx(expected, rel=1e-5)


def test_acc2_has0_and_non0():
    # has-0: truth >= 0 -> [1, 0, 1, 1, 0, 1]; pred >= 0 -> [1, 1, 0, 1, 0, 1]: 4 of 6 agree.
    assert value(M.SentimentBinaryAccuracy(exclude_zero=False), TRUTH, PRED) == pytest.approx(4 / 6)
    # non-0: drop the 0.0 truth; truth > 0 -> [1, 0, 1, 0, 1]; pred > 0 -> [1, 1, 1, 0, 1]: 4 of 5 agree.
    assert value(M.SentimentBinaryAccuracy(exclude_zero=True), TRUTH, PRED) == pytest.approx(4 / 5)


def test_weighted_f1_has0_and_non0():
    # has-0: tp=3 (ex 0, 3, 5), fp=1 (ex 1), fn=1 (ex 2), tn=1 (ex 4).
    # F1(pos) = 6/8, F1(neg) = 2/4; supports pos 4, neg 2 -> (4 * 0.75 + 2 * 0.5) / 6 = 2/3.
    assert value(M.SentimentBinaryF1(exclude_zero=False), TRUTH, PRED) == pytest.approx(2 / 3)
    # non-0: tp=3, fp=1, fn=0, tn=1. F1(pos) = 6/7, F1(neg) = 2/3; supports 3, 2 -> (18/7 + 4/3) / 5.
    assert value(M.SentimentBinaryF1(exclude_zero=True), TRUTH, PRED) == pytest.approx((18 / 7 + 4 / 3) / 5)


def test_acc5_and_acc7():
    # acc7: round(clip(., -3, 3)): truth [2, -1, 0, 1, -2, 2] (1.5 -> 2), pred [1, 0, 0, 0, -3, 3] (0.5 -> 0,
    # halves to even): only the third agrees.
    assert value(M.SentimentClassAccuracy(7), TRUTH, PRED) == pytest.approx(1 / 6)
    # acc5 clips to [-2, 2] first: -3.4 -> -2 matches -2.4 -> -2, 2.6 -> 2 matches 1.5 -> 2: 3 of 6.
    assert value(M.SentimentClassAccuracy(5), TRUTH, PRED) == pytest.approx(3 / 6)


def test_sample_weight_and_serialisation():
    weights = np.array([1, 1, 1, 1, 0, 0], "float32")
    # has-0 on the first four: truth [1, 0, 1, 1], pred [1, 1, 0, 1] -> 2 of 4.
    assert value(M.SentimentBinaryAccuracy(), TRUTH, PRED, sample_weight=weights) == pytest.approx(0.5)
    for metric in task_metrics(Task("regression", metrics=("pearson", "acc2_non0", "f1_has0", "acc5"))) + [
            M.SparseAUC(4), M.Error()]:
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(clone) is type(metric) and clone.get_config() == metric.get_config()


def test_task_metrics_defaults_and_unknown_names():
    names = [m.name for m in task_metrics(Task("classification", num_classes=3))]
    assert names == ["accuracy", "error", "auc"]
    assert [m.name for m in task_metrics(Task("regression"))] == ["mae", "pearson"]
    with pytest.raises(ValueError, match="Unknown metric"):
        task_metrics(Task("regression", metrics=("r2",)))


def test_model_selection_uses_the_tasks_main_validation_metric():
    from multisensory import datasets
    from multisensory.training.metrics import selection_metric

    assert selection_metric(datasets.info("synthetic_av").task) == ("val_accuracy", "max")
    assert selection_metric(datasets.info("mosi").task) == ("val_mae", "min")


def test_a_zoo_models_metrics_reset_in_one_traced_call_as_keras_resets_them():
    """`FusionModel.reset_metrics` (traced): `train_on_batch`/`test_on_batch` logs are each batch's alone, equal to
    Keras' eager reset's, and metrics compiled later (other variables) are reset too."""
    from multisensory import zoo
    from multisensory.datasets import DatasetInfo, Modality
    from multisensory.datasets.sentiment import SENTIMENT_METRICS

    info = DatasetInfo("tiny_sentiment", [Modality("text", (5, 3), kind="sequence"), Modality("audio", (5, 2),
                                                                                               kind="sequence")],
                       Task("regression", value_range=(-3, 3), metrics=SENTIMENT_METRICS), {})
    rng = np.random.default_rng(0)
    batches = [({"text": rng.normal(size=(8, 5, 3)).astype("float32"),
                 "audio": rng.normal(size=(8, 5, 2)).astype("float32")}, rng.uniform(-3, 3, 8).astype("float32"))
               for _ in range(2)]
    traced, eager = (zoo.create("ef_lstm", info, units=4) for _ in range(2))
    eager.reset_metrics = lambda: keras.Model.reset_metrics(eager)
    for model in (traced, eager):
        model.compile(optimizer="sgd")
    eager.set_weights(traced.get_weights())
    for x, y in batches:
        logs = [model.test_on_batch(x, y, return_dict=True) for model in (traced, eager)]
        assert logs[0] == logs[1] and set(logs[0]) == {"loss", *SENTIMENT_METRICS}
    traced.compile(optimizer="sgd", metrics=[M.PearsonCorrelation()])
    first = traced.train_on_batch(*batches[0], return_dict=True)
    assert first["pearson"] != 0 and traced.test_on_batch(*batches[0], return_dict=True)["pearson"] != 0
    traced.reset_metrics()
    state = [np.asarray(v) for m in traced.metrics for v in m.variables]
    assert len(state) == 3 and all(np.all(v == 0) for v in state)  # the loss' total and count, Pearson's sums

    class Calls(keras.metrics.Metric):  # state outside variables: only an eager reset clears it
        def __init__(self):
            super().__init__(name="calls")
            self.seen = 0

        def update_state(self, *args, **kwargs):
            self.seen += 1

        def result(self):
            return float(self.seen)

        def reset_state(self):
            self.seen = 0

    traced.compile(optimizer="sgd", metrics=[Calls()], run_eagerly=True)
    assert [traced.test_on_batch(*batches[0], return_dict=True)["calls"] for _ in range(2)] == [1.0, 1.0]
