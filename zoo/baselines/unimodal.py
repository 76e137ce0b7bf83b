"""`unimodal`: one modality's encoder and head; the other modalities are accepted and ignored.

The single-modality baseline that fusion is measured against (Liu et al. 2018, "Base" of the HIGGS table).
Barnum et al. (2020) build unimodal baselines by zeroing the other input of a fusion model instead
(`multisensory compare` does that); this model has no weights for the ignored modalities at all.
"""

import keras

from ..encoders import MLPHead, encoder_for
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range


@register_model("unimodal", search_space={"width": choice(32, 64, 128), "dropout": float_range(0.0, 0.5, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class Unimodal(FusionModel):
    """Encoder and MLP head of one modality.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        modality: str. The modality used; defaults to the first.
        width: int. Embedding size of the encoder.
        hidden: tuple of int. Hidden sizes of the head.
        dropout: float. Dropout in encoder and head.

    Example:
    ```python
    from multisensory import zoo
    model = zoo.create("unimodal", "higgs", modality="high_level")
    ```
    """

    def __init__(self, modalities, task, modality=None, width=64, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.modality = modality or self.modality_names[0]
        self.width, self.hidden, self.dropout = width, tuple(hidden), dropout
        spec = next((m for m in self.modalities if m.name == self.modality), None)
        if spec is None:
            raise ValueError(f"Unknown modality '{self.modality}'; the modalities are {list(self.modality_names)}.")
        self.encoder = encoder_for(spec, width, dropout)
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        z = self.encoder(inputs[self.modality], training=training)
        outputs = {"unimodal": {self.modality: z}, "fused": z}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(z, training=training))
        return outputs

    def get_config(self):
        return {**super().get_config(), "modality": self.modality, "width": self.width, "hidden": list(self.hidden),
                "dropout": self.dropout}
