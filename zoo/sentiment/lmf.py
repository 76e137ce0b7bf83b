"""`lmf`: Low-rank Multimodal Fusion (Liu, Shen, Lakshminarasimhan, Liang, Zadeh & Morency 2018, ACL).

The subnetworks of `tfn`, then Z = `LowRankFusion` of rank r (modality-specific factors; equal to a linear layer
on TFN's fusion tensor whose weight is the sum of the factors' outer products), then an MLP head.
"""

import keras

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .sequence_lstm import fuse_subnetworks, subnetwork
from .tensor_fusion import LowRankFusion


@register_model("lmf", search_space={"dims": choice(8, 16, 32), "rank": choice(2, 4, 8), "units": choice(16, 32, 64),
                                        "dropout": float_range(0.0, 0.4, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class LMF(FusionModel):
    """Low-rank Multimodal Fusion.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config).
        dims: int. Size of every Z_m.
        units: int. Size of the fused representation.
        rank: int. Rank r of the factorisation.
        hidden: tuple of int. Hidden sizes of the head.
        dropout: float. Dropout in the subnetworks and the head.
    """

    def __init__(self, modalities, task, dims=16, units=32, rank=4, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        self.dims, self.units, self.rank, self.hidden, self.dropout = dims, units, rank, tuple(hidden), dropout
        self.subnetworks = {m.name: subnetwork(m, dims, dropout) for m in self.modalities}
        self.fusion = LowRankFusion(units, rank, name="low_rank_fusion")
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        return fuse_subnetworks(self, inputs, training)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims, "units": self.units, "rank": self.rank,
                "hidden": list(self.hidden), "dropout": self.dropout}
