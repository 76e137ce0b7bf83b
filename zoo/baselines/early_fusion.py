"""`early_fusion`: concatenate the flattened inputs and learn one network over them.

The classic early-fusion baseline (Barnum et al. 2020, section 2; MultiBench's early concatenation): the modalities
meet before the first layer. In the model contract, Z_m is modality m's flattened input and Z the last hidden layer
of the shared network.
"""

import keras

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import float_range


@register_model("early_fusion", search_space={"dropout": float_range(0.0, 0.5, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class EarlyFusion(FusionModel):
    """One MLP over the concatenation of all flattened modalities.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        hidden: tuple of int. Hidden layer sizes of the shared network; the last one is Z.
        dropout: float. Dropout after each hidden layer.

    Example:
    ```python
    from multisensory import datasets, zoo
    model = zoo.create("early_fusion", datasets.info("synthetic_av"), hidden=(128, 64))
    ```

    Reference: Barnum, Talukder & Yue, arXiv:2011.07191.
    """

    def __init__(self, modalities, task, hidden=(256, 64), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.hidden, self.dropout = tuple(hidden), dropout
        for m in self.modalities:
            if None in m.shape:
                raise ValueError(f"early_fusion flattens its inputs: modality '{m.name}' has variable shape {m.shape}.")
        self.flatten = keras.layers.Flatten()
        self.concat = keras.layers.Concatenate()
        self.network = MLPHead(self.hidden[-1], self.hidden[:-1], dropout, name="shared_network")
        self.activation = keras.layers.ReLU()
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, (), name="head")

    def forward(self, inputs, training=None):
        unimodal = {m: self.flatten(inputs[m]) for m in self.modality_names}
        fused = self.activation(self.network(self.concat(list(unimodal.values())), training=training))
        outputs = {"unimodal": unimodal, "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(fused))
        return outputs

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "dropout": self.dropout}
