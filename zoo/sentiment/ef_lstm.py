"""`ef_lstm`: the early-fusion LSTM baseline of multimodal sentiment analysis (e.g. Zadeh et al. 2018, MFN's
"EF-LSTM"): the modalities' features are concatenated at every (word-aligned) step and one LSTM reads them.

Padding steps (all features of all modalities zero) are masked. In the model contract Z_m is the mean of modality
m's features over its non-padding steps and Z the LSTM's last state.
"""

import keras
from keras import ops

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from .sequence_lstm import MaskedLSTM, check_aligned, masked_mean, padding_mask


@register_model("ef_lstm")
@keras.saving.register_keras_serializable(package="multisensory")
class EFLSTM(FusionModel):
    """One LSTM over the per-step concatenation of aligned sequence modalities.

    Args:
        modalities: sequences of one length (batch, T, D_m).
        task: `Task` (or config).
        units: int. LSTM state size.
        hidden: tuple of int. Hidden sizes of the head.
        dropout: float. Dropout on the LSTM inputs and in the head.
    """

    def __init__(self, modalities, task, units=64, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        check_aligned(self.modalities, "ef_lstm")
        self.units, self.hidden, self.dropout = units, tuple(hidden), dropout
        self.lstm = MaskedLSTM(units, dropout, name="lstm")
        self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        steps = [inputs[m] for m in self.modality_names]
        unimodal = {name: masked_mean(x, padding_mask(x)) for name, x in zip(self.modality_names, steps)}
        fused = self.lstm(ops.concatenate(steps, axis=-1), training=training)
        return {"prediction": self._head_output(self.head(fused, training=training)), "unimodal": unimodal,
                "fused": fused}

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": list(self.hidden), "dropout": self.dropout}
