"""`tfn`: Tensor Fusion Network (Zadeh, Chen, Poria, Cambria & Morency 2017, EMNLP).

Each modality's subnetwork (an LSTM over its non-padding steps; the zoo encoder for non-sequences) gives Z_m of
size `dims`; Z = the flattened outer product of [Z_1; 1], ..., [Z_M; 1] (size (dims + 1)^M), fed to an MLP head.
The paper's audio and visual subnetworks average their sequences before an MLP; an LSTM for every modality is this
model's choice.
"""

import keras

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .sequence_lstm import fuse_subnetworks, subnetwork
from .tensor_fusion import TensorFusion


@register_model("tfn", search_space={"dims": choice(4, 8, 16), "dropout": float_range(0.0, 0.4, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class TFN(FusionModel):
    """Tensor Fusion Network.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        dims: int. Size of every Z_m.
        hidden: tuple of int. Hidden sizes of the head on the fusion tensor.
        dropout: float. Dropout in the subnetworks and the head.
    """

    def __init__(self, modalities, task, dims=16, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.dims, self.hidden, self.dropout = dims, tuple(hidden), dropout
        self.subnetworks = {m.name: subnetwork(m, dims, dropout) for m in self.modalities}
        self.fusion = TensorFusion(name="tensor_fusion")
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        return fuse_subnetworks(self, inputs, training)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims, "hidden": list(self.hidden), "dropout": self.dropout}
