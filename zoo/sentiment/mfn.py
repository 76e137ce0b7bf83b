"""`mfn`: Memory Fusion Network (Zadeh, Liang, Mazumder, Poria, Cambria & Morency 2018, AAAI), section 3.

A system of LSTMs, one per modality (view), run over the aligned steps. At every step t:
- Delta-memory attention: the memories of all views at t-1 and t, c^[t-1,t] = [c_{t-1}; c_t] (size 2 sum d_m), are
  scored by a network D_a with a softmax over its entries, a_t = softmax(D_a(c^[t-1,t])), and attended,
  ĉ_t = c^[t-1,t] ⊙ a_t (eq. 2);
- Multi-view gated memory u (eqs. 3-5): û_t = tanh(D_u(ĉ_t)), retain and update gates γ1 = sigmoid(D_γ1(ĉ_t)),
  γ2 = sigmoid(D_γ2(ĉ_t)), u_t = γ1 ⊙ u_{t-1} + γ2 ⊙ û_t, u_0 = 0.
Each D is a one-hidden-layer ReLU network. The prediction is an MLP on [h_T of every view; u_T] (eq. 6).

Padding steps (every feature of every view zero; the sentiment loaders pad at the front) leave all states
unchanged. In the model contract Z_m = h_T of view m and Z = [h_T; u_T].
"""

import keras
from keras import layers, ops

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice, float_range
from .sequence_lstm import check_aligned, padding_mask


def _network(units, hidden, activation, name):
    return keras.Sequential([layers.Dense(hidden, activation="relu"), layers.Dense(units, activation=activation)],
                            name=name)


@register_model("mfn", search_space={"units": choice(16, 32, 64), "memory": choice(16, 32, 64),
                                        "dropout": float_range(0.0, 0.4, 0.1)})
@keras.saving.register_keras_serializable(package="multisensory")
class MFN(FusionModel):
    """Memory Fusion Network over aligned sequence modalities.

    Args:
        modalities: sequences of one length (batch, T, D_m).
        task: `Task` (or config).
        units: int. State size of every view's LSTM.
        memory: int. Size of the multi-view gated memory u.
        attention_hidden: int. Hidden size of D_a, D_u, D_γ1 and D_γ2.
        hidden: tuple of int. Hidden sizes of the output MLP.
        dropout: float. Dropout in the output MLP.
    """

    def __init__(self, modalities, task, units=32, memory=32, attention_hidden=32, hidden=(64,), dropout=0.0,
                 **kwargs):
        super().__init__(modalities, task, **kwargs)
        check_aligned(self.modalities, "mfn", fixed_length=True)
        self.units, self.memory, self.attention_hidden = units, memory, attention_hidden
        self.hidden, self.dropout = tuple(hidden), dropout
        self.cells = {m.name: layers.LSTMCell(units, name=f"{m.name}_lstm") for m in self.modalities}
        size = 2 * units * len(self.modalities)
        self.attention = _network(size, attention_hidden, "softmax", "delta_memory_attention")
        self.proposal = _network(memory, attention_hidden, "tanh", "memory_proposal")
        self.retain = _network(memory, attention_hidden, "sigmoid", "retain_gate")
        self.update = _network(memory, attention_hidden, "sigmoid", "update_gate")
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        names = self.modality_names
        steps = self.modalities[0].shape[0]
        batch = ops.shape(inputs[names[0]])[0]
        mask = ops.any(ops.stack([padding_mask(inputs[m]) for m in names], axis=0), axis=0)  # (B, T)
        zeros = ops.zeros((batch, self.units))
        states = {m: [zeros, zeros] for m in names}
        u = ops.zeros((batch, self.memory))
        for t in range(steps):
            keep = ops.cast(mask[:, t, None], "float32")
            before = ops.concatenate([states[m][1] for m in names], axis=-1)
            for m in names:
                _, (h, c) = self.cells[m](inputs[m][:, t], states[m], training=training)
                states[m] = [keep * h + (1 - keep) * states[m][0], keep * c + (1 - keep) * states[m][1]]
            memories = ops.concatenate([before] + [states[m][1] for m in names], axis=-1)
            attended = memories * self.attention(memories)
            proposed = self.retain(attended) * u + self.update(attended) * self.proposal(attended)
            u = keep * proposed + (1 - keep) * u
        unimodal = {m: states[m][0] for m in names}
        fused = ops.concatenate(list(unimodal.values()) + [u], axis=-1)
        outputs = {"unimodal": unimodal, "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(fused, training=training))
        return outputs

    def get_config(self):
        return {**super().get_config(), "units": self.units, "memory": self.memory,
                "attention_hidden": self.attention_hidden, "hidden": list(self.hidden), "dropout": self.dropout}
