"""`mult`: the Multimodal Transformer (Tsai et al. 2019) as a zoo model: `MulTCore` then an MLP head.

Any modality is read through its sequence view (`sequence_views`: an image as rows); the modalities need not be
aligned. In the model contract Z_m is the last element of target stream m and Z their concatenation.
"""

import keras

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from .mult_core import MulTCore
from .sequences import sequence_views


@register_model("mult")
@keras.saving.register_keras_serializable(package="multisensory")
class MulT(FusionModel):
    """Multimodal Transformer.

    Args:
        modalities: list of `Modality` (or configs), at least two.
        task: `Task` (or config).
        units, num_layers, heads, kernel_size, dropout, attention_dropout: as `MulTCore`.
        hidden: tuple of int. Hidden sizes of the output MLP.
    """

    def __init__(self, modalities, task, units=32, num_layers=4, heads=4, kernel_size=1, dropout=0.1,
                 attention_dropout=0.1, hidden=(64,), **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.units, self.num_layers, self.heads, self.kernel_size = units, num_layers, heads, kernel_size
        self.dropout, self.attention_dropout, self.hidden = dropout, attention_dropout, tuple(hidden)
        self.core = MulTCore(self.modality_names, units, num_layers, heads, kernel_size, dropout, attention_dropout,
                             name="mult")
        self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        core = self.core(*sequence_views(inputs, self.modalities), training=training)
        return {"prediction": self._head_output(self.head(core["fused"], training=training)),
                "unimodal": core["unimodal"], "fused": core["fused"]}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers, "heads": self.heads,
                "kernel_size": self.kernel_size, "dropout": self.dropout, "attention_dropout": self.attention_dropout,
                "hidden": list(self.hidden)}
