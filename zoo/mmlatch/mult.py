"""`mult`: the Multimodal Transformer (Tsai et al. 2019) as a zoo model: `MulTCore` then the paper's output block.

Any modality is read through its sequence view (`sequence_views`: an image as rows); the modalities need not be
aligned. In the model contract Z_m is the last element of target stream m and Z their concatenation.

The output block is the one of the authors' code: a residual block h' = W_2 dropout(relu(W_1 Z + b_1)) + b_2 + Z
with W_1, W_2 square (the size of Z), then a linear output layer on h'.
"""

import keras
from keras import layers, ops

from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .mult_core import MulTCore
from .sequences import sequence_shape, sequence_views, single_step_note


@keras.saving.register_keras_serializable(package="multisensory")
class ResidualOutput(layers.Layer):
    """MulT's output block: W_2 dropout(relu(W_1 z)) + z, then a linear layer to `output_size`."""

    def __init__(self, output_size, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.output_size, self.dropout = output_size, dropout
        self.drop = layers.Dropout(dropout)
        self.out = layers.Dense(output_size, name="output")

    def build(self, input_shape):
        size = input_shape[-1]
        self.proj1, self.proj2 = layers.Dense(size, name="proj1"), layers.Dense(size, name="proj2")
        for layer in (self.proj1, self.proj2, self.out):
            layer.build(input_shape)

    def call(self, z, training=None):
        return self.out(self.proj2(self.drop(ops.relu(self.proj1(z)), training=training)) + z)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "dropout": self.dropout}


@register_model("mult", search_space={"units": choice(16, 32, 40), "num_layers": choice(2, 4),
                                         "dropout": float_range(0.0, 0.3, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class MulT(FusionModel):
    """Multimodal Transformer.

    Args:
        modalities: list of `Modality` (or configs), at least two.
        task: `Task` (or config).
        units, num_layers, heads, kernel_size, dropout, attention_dropout: as `MulTCore`.
        output_dropout: float. Dropout inside the residual output block (the authors' `out_dropout`).
    """

    jit_predict = True  # measured faster at batch 1 (docs/performance.md)

    def __init__(self, modalities, task, units=32, num_layers=4, heads=4, kernel_size=1, dropout=0.1,
                 attention_dropout=0.1, output_dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.units, self.num_layers, self.heads, self.kernel_size = units, num_layers, heads, kernel_size
        self.dropout, self.attention_dropout, self.output_dropout = dropout, attention_dropout, output_dropout
        single_step_note("mult", [m.name for m in self.modalities if sequence_shape(m)[0] == 1])
        self.core = MulTCore(self.modality_names, units, num_layers, heads, kernel_size, dropout, attention_dropout,
                             name="mult")
        if self.plain_head:
            self.head = ResidualOutput(self.task.output_size, output_dropout, name="head")

    def forward(self, inputs, training=None):
        core = self.core(*sequence_views(inputs, self.modalities), training=training)
        outputs = {"unimodal": core["unimodal"], "fused": core["fused"]}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(core["fused"], training=training))
        return outputs

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers, "heads": self.heads,
                "kernel_size": self.kernel_size, "dropout": self.dropout, "attention_dropout": self.attention_dropout,
                "output_dropout": self.output_dropout}
