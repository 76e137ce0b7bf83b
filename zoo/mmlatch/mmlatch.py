"""`mmlatch`: MMLatch, bottom-up top-down fusion (Paraskevopoulos, Georgiou & Potamianos 2022, ICASSP), section 2.

Two stages in one forward pass (and so in one training step):
- Stage I runs the backbone's bottom-up network on the raw inputs i_k and takes its high-level sequences (the
  unimodal encoders' r_k for `backbone="lstm"`; each target stream after MulT's last layer for `backbone="mult"`,
  the paper's Table 2) with no gradient: the paper disables the encoders' learning in this stage.
- Top-down feedback (eq. 4): i~_k = 1/2 (f_{j->k} + f_{l->k}) ⊙ i_k (with M modalities, the mean over the M - 1
  others) with f_{j->k} = sigmoid(LSTM_{j->k}(r_j)), whose output size is i_k's feature size. The paper speaks of
  three feedback LSTMs, but a mask must have its target's size, so there is one per (source, target) pair, as in the
  authors' released code. `feedback="dense"` uses a per-step dense map instead (Table 2's "no LSTM" row) and
  `feedback=None` gives the baseline. The masks are dropped out (rate `dropout`) in training only; the authors'
  code also drops them at inference, which is not done here.
- Stage II runs the backbone on the masked inputs for the prediction (a dense layer on its fused state).

Inputs are read through their sequence views (`sequence_views`) and masks and concatenations need one timeline, so
modalities of different lengths are linearly resampled to the longest (aligned data, the paper's setting, passes
unchanged). The masks are returned as `outputs["masks"]` ({modality: (batch, T, D_k)}) for analysis.

Training defaults (`compile()` and `recipe()`): Adam 5e-4, L1 loss for regression, the learning rate halved after
2 epochs without validation improvement, early stopping with patience 10.
"""

import keras
from keras import layers, ops

from .. import recurrent
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .latch_core import LatchCore
from .mult_core import MulTCore
from .sequences import sequence_shape, sequence_views, single_step_note

FEEDBACKS = ("lstm", "dense", None)
BACKBONES = ("lstm", "mult")


@register_model("mmlatch", search_space={"units": choice(64, 100), "dropout": float_range(0.0, 0.4, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class MMLatch(FusionModel):
    """MMLatch (see the module docstring).

    Args:
        modalities: list of `Modality` (or configs), at least two.
        task: `Task` (or config).
        feedback: "lstm", "dense" or None.
        backbone: "lstm" (the paper's cross-modal attention network) or "mult".
        units: int. Size d of the backbone (paper: 100 for "lstm").
        dropout: float. Dropout of the backbone, the masks and before the output layer (paper: 0.2).
        num_layers, heads: int. MulT's layers and heads (backbone "mult").
    """

    default_learning_rate = 5e-4  # the paper's Adam
    default_recipe = "mmlatch"

    def __init__(self, modalities, task, feedback="lstm", backbone="lstm", units=100, dropout=0.2, num_layers=4,
                 heads=4, **kwargs):
        super().__init__(modalities, task, **kwargs)
        if feedback not in FEEDBACKS:
            raise ValueError(f"Unknown feedback '{feedback}'; choose one of {list(FEEDBACKS)}.")
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone '{backbone}'; choose one of {list(BACKBONES)}.")
        if len(self.modalities) < 2:
            raise ValueError(f"mmlatch fuses two or more modalities; got {list(self.modality_names)}.")
        self.feedback, self.backbone, self.units, self.dropout = feedback, backbone, units, dropout
        self.num_layers, self.heads = num_layers, heads
        shapes = {m.name: sequence_shape(m) for m in self.modalities}
        lengths = {t for t, _ in shapes.values()}
        if len(lengths) > 1 and None in lengths:
            raise ValueError(f"mmlatch needs one timeline: modalities of unknown length must all share it; got "
                             f"{shapes}.")
        self.steps = max(lengths) if None not in lengths else None
        single_step_note("mmlatch", list(self.modality_names) if self.steps == 1 else [])
        names = self.modality_names
        self.core = (LatchCore(names, units, dropout, name="latch") if backbone == "lstm" else
                     MulTCore(names, units, num_layers, heads, dropout=dropout, attention_dropout=dropout,
                              name="mult"))
        if feedback is not None:
            self.feedback_layers = {
                f"{j}_to_{k}": (recurrent.LSTM(shapes[k][1], return_sequences=True, name=f"{j}_to_{k}_feedback")
                                if feedback == "lstm" else layers.Dense(shapes[k][1], name=f"{j}_to_{k}_feedback"))
                for k in names for j in names if j != k}
            self.mask_dropout = layers.Dropout(dropout)
        if self.plain_head:
            self.head_dropout = layers.Dropout(dropout)
            self.head = layers.Dense(self.task.output_size, name="head")

    def masks(self, sequences, masks, training=None):
        """Stage I and eq. 4: {k: mean over j != k of sigmoid(feedback_{j->k}(r_j))}, r without gradient."""
        top = {k: ops.stop_gradient(r) for k, r in self.core.high_level(sequences, masks, training).items()}

        def gate(j, k):
            layer = self.feedback_layers[f"{j}_to_{k}"]
            return ops.sigmoid(layer(top[j], mask=masks[j], training=training) if self.feedback == "lstm"
                               else layer(top[j]))

        names = self.modality_names
        return {k: sum(gate(j, k) for j in names if j != k) / (len(names) - 1) for k in names}

    def sequence_views(self, inputs):
        """({m: (batch, T, D_m)} on one timeline, {m: padding mask (batch, T)}) of the raw inputs."""
        return sequence_views(inputs, self.modalities, self.steps)

    def forward(self, inputs, training=None):
        sequences, masks = self.sequence_views(inputs)
        outputs = {}
        if self.feedback is not None:
            outputs["masks"] = self.masks(sequences, masks, training)
            sequences = {m: ops.cast(self.mask_dropout(outputs["masks"][m], training=training), x.dtype) * x
                         for m, x in sequences.items()}
        core = self.core(sequences, masks, training=training)
        outputs.update(unimodal=core["unimodal"], fused=core["fused"])
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(self.head_dropout(core["fused"], training=training)))
        return outputs

    def get_config(self):
        return {**super().get_config(), "feedback": self.feedback, "backbone": self.backbone, "units": self.units,
                "dropout": self.dropout, "num_layers": self.num_layers, "heads": self.heads}
