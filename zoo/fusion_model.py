"""`FusionModel`: the contract every zoo model follows.

    inputs {modality: tensor} -> encoders[m] -> Z_m -> fusion -> Z -> head -> prediction

`model(inputs)` returns the prediction only (logits (batch, K) for classification, a value (batch,) for
regression), so `fit`, `evaluate`, `predict` and exports see one tensor. `model(inputs, return_outputs=True)` is
the one channel through which training add-ons and analysis tools get more: a dict with

- `"prediction"`: what `model(inputs)` returns;
- `"unimodal"`: {modality: Z_m}, the unimodal representations;
- `"fused"`: Z, the fused representation;
- model-specific extras documented by each model (e.g. `"unimodal_predictions"` of late fusion,
  `"branch_probabilities"` of the multiplicative models).

Subclasses compute that dict in `forward(inputs, training)`. Inputs are checked at the boundary: a missing or
unexpected modality, a wrong shape or a non-floating dtype raises before any layer runs, with the modality's name
in the message.

Training runs one forward pass per step and minimises the sum of the named terms that `loss_terms` returns from
the outputs dict (by default the compiled loss on the prediction plus any `model.losses`, exactly what Keras'
own `train_step` minimises). Schemes whose objective differs override `loss_terms`, not the training loop.
"""

from collections.abc import Mapping

import keras
import tensorflow as tf

from multisensory.datasets.dataset_info import Modality, Task


def check_inputs(inputs, modalities):
    """Raises `TypeError`/`ValueError` naming the modality when `inputs` does not match `modalities`."""
    names = [m.name for m in modalities]
    if not isinstance(inputs, Mapping):
        raise TypeError(f"Expected a dict {{modality: tensor}} with keys {names}, got {type(inputs).__name__}.")
    missing = [n for n in names if n not in inputs]
    extra = [k for k in inputs if k not in names]
    if missing:
        raise ValueError(f"Missing modality {', '.join(repr(n) for n in missing)}; the model's modalities are {names}.")
    if extra:
        raise ValueError(f"Unexpected modality {', '.join(repr(k) for k in extra)}; the model's modalities are {names}.")
    for m in modalities:
        x = inputs[m.name]
        shape = tuple(x.shape)
        if len(shape) != len(m.shape) + 1 or any(
                e is not None and s is not None and s != e for s, e in zip(shape[1:], m.shape)):
            expected = ", ".join(["batch"] + [str(d) for d in m.shape])
            raise ValueError(f"Modality '{m.name}': expected shape ({expected}), got {shape}.")
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" not in dtype:
            raise TypeError(f"Modality '{m.name}': expected a floating-point tensor ({m.dtype}), got {dtype}.")


@keras.saving.register_keras_serializable(package="multisensory")
class FusionModel(keras.Model):
    """Base class of zoo models: per-modality encoders, a fusion and a head over a dict of modalities.

    Subclasses create their layers in `__init__` and implement `forward`.

    Args:
        modalities: list of `Modality` or their configs (`DatasetInfo.modalities`).
        task: `Task` or its config.
    """

    def __init__(self, modalities, task, **kwargs):
        super().__init__(**kwargs)
        self.modalities = tuple(Modality.from_config(m) for m in modalities)
        self.task = Task.from_config(task)

    @property
    def modality_names(self):
        return tuple(m.name for m in self.modalities)

    def forward(self, inputs, training=None):
        """Returns {"prediction", "unimodal", "fused", ...}; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward().")

    def call(self, inputs, training=None, return_outputs=False):
        check_inputs(inputs, self.modalities)
        outputs = self.forward(inputs, training=training)
        return outputs if return_outputs else outputs["prediction"]

    def loss_terms(self, x, y, outputs, sample_weight=None, training=True):
        """{name: scalar loss} minimised together; each is scaled for `tf.distribute` like a Keras `Loss`."""
        return {"task": self.compute_loss(x=x, y=y, y_pred=outputs["prediction"], sample_weight=sample_weight,
                                          training=training)}

    def _objective(self, data, training):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(x, training=training, return_outputs=True)
        loss = sum(self.loss_terms(x, y, outputs, sample_weight, training).values())
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":  # the mean loss, logged unscaled by the number of replicas
                metric.update_state(loss * replicas, sample_weight=tf.shape(outputs["prediction"])[0])
        return x, y, sample_weight, outputs, loss

    def train_step(self, data):
        with tf.GradientTape() as tape:
            x, y, sample_weight, outputs, loss = self._objective(data, training=True)
            loss = self.optimizer.scale_loss(loss)
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
        return self.compute_metrics(x, y, outputs["prediction"], sample_weight=sample_weight)

    def test_step(self, data):
        x, y, sample_weight, outputs, _ = self._objective(data, training=False)
        return self.compute_metrics(x, y, outputs["prediction"], sample_weight=sample_weight)

    def build(self, input_shape=None):
        """Creates all weights from the modality specs (a variable length is built with 4 steps)."""
        dummy = {m.name: keras.ops.zeros((1,) + tuple(4 if d is None else d for d in m.shape), m.dtype)
                 for m in self.modalities}
        self.forward(dummy, training=False)

    def _head_output(self, outputs):
        """Shapes the head's output into the prediction: logits (batch, K), or a value (batch,) for regression."""
        return outputs if self.task.type == "classification" else keras.ops.squeeze(outputs, -1)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras `compile` with task defaults: Adam(1e-3), cross-entropy on logits or MAE, the task's metrics."""
        from multisensory.training.metrics import task_metrics

        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                    if self.task.type == "classification" else keras.losses.MeanAbsoluteError())
        if metrics == "auto":
            metrics = task_metrics(self.task)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Restores the compile settings saved in a `.keras` file (Keras skips this for an overridden `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        return {**super().get_config(), "modalities": [m.get_config() for m in self.modalities],
                "task": self.task.get_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
