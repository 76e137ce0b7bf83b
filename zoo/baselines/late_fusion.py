"""`late_fusion`: one predictor per modality, decisions averaged.

Each modality has its own encoder and head; the fused decision is the mean of the per-modality class
probabilities (classification) or of the per-modality predictions (regression). For classification the model's
logits are log(mean_m softmax(logits_m)), whose softmax is exactly that mean, so the usual cross-entropy on logits
trains the averaged decision.
Extras of `forward`: `"unimodal_predictions"` {modality: logits_m (or value_m)}; Z is the fused decision.
"""

import keras
from keras import ops

from ..encoders import MLPHead, encoder_for
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range


@register_model("late_fusion", search_space={"width": choice(32, 64, 128), "dropout": float_range(0.0, 0.5, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class LateFusion(FusionModel):
    """Per-modality encoder + head, decisions averaged.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        width: int. Embedding size of each encoder.
        hidden: tuple of int. Hidden sizes of each per-modality head.
        dropout: float. Dropout in encoders and heads.

    Example:
    ```python
    from multisensory import datasets, zoo
    model = zoo.create("late_fusion", datasets.info("synthetic_av"))
    ```
    """

    def __init__(self, modalities, task, width=64, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.width, self.hidden, self.dropout = width, tuple(hidden), dropout
        self.encoders = {m.name: encoder_for(m, width, dropout) for m in self.modalities}
        if self.plain_head:
            self.heads = {m.name: MLPHead(self.task.output_size, self.hidden, dropout, name=f"{m.name}_head")
                          for m in self.modalities}

    def forward(self, inputs, training=None):
        unimodal = {m: self.encoders[m](inputs[m], training=training) for m in self.modality_names}
        if not self.plain_head:  # the multiplicative combination replaces the averaged decisions
            return {"unimodal": unimodal, "fused": ops.concatenate(list(unimodal.values()), axis=-1)}
        decisions = {m: self._head_output(self.heads[m](unimodal[m], training=training)) for m in self.modality_names}
        stacked = ops.stack(list(decisions.values()), axis=0)
        if self.task.type == "classification":
            fused = ops.log(ops.mean(ops.softmax(stacked, axis=-1), axis=0))
        else:
            fused = ops.mean(stacked, axis=0)
        return {"prediction": fused, "unimodal": unimodal, "fused": fused, "unimodal_predictions": decisions}

    def get_config(self):
        return {**super().get_config(), "width": self.width, "hidden": list(self.hidden), "dropout": self.dropout}
