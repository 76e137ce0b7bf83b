"""`additive_fusion`: per-modality encoders, embeddings summed (or concatenated), MLP head.

The intermediate-fusion baseline of the multiplicative paper's "Add" column (Liu et al. 2018, arXiv:1805.11730,
section 4) and of MultiBench: Z_m = encoder_m(x_m), Z = sum_m Z_m (`combine="sum"`) or [Z_1; ...; Z_M]
(`combine="concat"`), prediction = MLP(Z).
"""

import keras
from keras import ops

from ..encoders import MLPHead, encoder_for
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range

COMBINE = ("sum", "concat")


@register_model("additive_fusion", search_space={"width": choice(32, 64, 128), "combine": choice("sum", "concat"),
                                                    "dropout": float_range(0.0, 0.5, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class AdditiveFusion(FusionModel):
    """Per-modality encoders, summed or concatenated embeddings, MLP head.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        width: int. Embedding size of each encoder.
        hidden: tuple of int. Hidden sizes of the head.
        combine: str. `"sum"` or `"concat"`.
        dropout: float. Dropout in encoders and head.

    Example:
    ```python
    from multisensory import datasets, zoo
    model = zoo.create("additive_fusion", datasets.info("av_mnist"), combine="concat")
    model.compile()
    ```
    """

    def __init__(self, modalities, task, width=64, hidden=(64,), combine="sum", dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got '{combine}'.")
        self.width, self.hidden, self.combine, self.dropout = width, tuple(hidden), combine, dropout
        self.encoders = {m.name: encoder_for(m, width, dropout) for m in self.modalities}
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        unimodal = {m: self.encoders[m](inputs[m], training=training) for m in self.modality_names}
        z = list(unimodal.values())
        fused = ops.sum(ops.stack(z, axis=0), axis=0) if self.combine == "sum" else ops.concatenate(z, axis=-1)
        outputs = {"unimodal": unimodal, "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(fused, training=training))
        return outputs

    def get_config(self):
        return {**super().get_config(), "width": self.width, "hidden": list(self.hidden), "combine": self.combine,
                "dropout": self.dropout}
