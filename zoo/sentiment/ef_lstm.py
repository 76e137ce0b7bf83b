"""`ef_lstm`: the early-fusion LSTM baseline of multimodal sentiment analysis (e.g. Zadeh et al. 2018, MFN's
"EF-LSTM"): the modalities' features are concatenated at every (word-aligned) step and one LSTM reads them.

Padding steps (the front steps before any modality holds a non-zero feature) are masked. Each modality's step features
first pass a learned linear map without bias, E_m (`embed` units), so a padding step stays zero and an LSTM over the
concatenated [E_1 x_1; ...; E_M x_M] is still one LSTM reading all modalities at every step (with `embed` at least the
modality's feature size, the same function class as an LSTM on the raw concatenation: E_m folds into the LSTM's input
kernel). The default `embed=32` is smaller than word-aligned sentiment features (300-d GloVe text, 74-d COVAREP audio),
where E_m is a rank-32 bottleneck and the model a restriction of the paper's EF-LSTM: set `embed` to the largest feature
size (e.g. 300) for the paper's function class. In the model contract Z_m is the mean of E_m x_m over the non-padding
steps and Z the LSTM's last state. Z_m is thus learned, so the synergy regulariser (Shankar 2021, whose FLSTM row needs
unimodal representations of an early-fusion LSTM) reaches the model's weights through it; the time-mean of the raw
inputs, which nothing trainable feeds, could not.
"""

import keras
from keras import ops

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .sequence_lstm import MaskedLSTM, check_aligned, masked_mean, padding_mask


@register_model("ef_lstm", search_space={"units": choice(32, 64, 128), "embed": choice(16, 32, 64),
                                            "dropout": float_range(0.0, 0.4, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class EFLSTM(FusionModel):
    """One LSTM over the per-step concatenation of aligned sequence modalities.

    Args:
        modalities: sequences of one length (batch, T, D_m).
        task: `Task` (or config).
        units: int. LSTM state size.
        embed: int. Size of each modality's linear step embedding E_m.
        hidden: tuple of int. Hidden sizes of the head.
        dropout: float. Dropout on the LSTM inputs and in the head.
    """

    def __init__(self, modalities, task, units=64, embed=32, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        check_aligned(self.modalities, "ef_lstm")
        self.units, self.embed, self.hidden, self.dropout = units, embed, tuple(hidden), dropout
        self.embeddings = {m: keras.layers.Dense(embed, use_bias=False, name=f"{m}_embedding")
                           for m in self.modality_names}
        self.lstm = MaskedLSTM(units, dropout, name="lstm")
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        mask = ops.any(ops.stack([padding_mask(inputs[m]) for m in self.modality_names]), axis=0)
        steps = [self.embeddings[m](inputs[m]) for m in self.modality_names]
        unimodal = {name: masked_mean(x, mask) for name, x in zip(self.modality_names, steps)}
        fused = self.lstm(ops.concatenate(steps, axis=-1), training=training)
        outputs = {"unimodal": unimodal, "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(fused, training=training))
        return outputs

    def get_config(self):
        return {**super().get_config(), "units": self.units, "embed": self.embed, "hidden": list(self.hidden), "dropout": self.dropout}
