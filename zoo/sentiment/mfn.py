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

from .. import recurrent
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

    jit_predict = True  # measured faster at batch 1 (docs/performance.md)

    def __init__(self, modalities, task, units=32, memory=32, attention_hidden=32, hidden=(64,), dropout=0.0,
                 **kwargs):
        super().__init__(modalities, task, **kwargs)
        check_aligned(self.modalities, "mfn", fixed_length=True)
        self.units, self.memory, self.attention_hidden = units, memory, attention_hidden
        self.hidden, self.dropout = tuple(hidden), dropout
        self.cells = {m.name: layers.LSTMCell(units, name=f"{m.name}_lstm") for m in self.modalities}
        self.stock = recurrent.is_stock()
        size = 2 * units * len(self.modalities)
        self.attention = _network(size, attention_hidden, "softmax", "delta_memory_attention")
        self.proposal = _network(memory, attention_hidden, "tanh", "memory_proposal")
        self.retain = _network(memory, attention_hidden, "sigmoid", "retain_gate")
        self.update = _network(memory, attention_hidden, "sigmoid", "update_gate")
        if self.plain_head:
            self.head = MLPHead(self.task.output_size, self.hidden, dropout, name="head")

    def forward(self, inputs, training=None):
        names = self.modality_names
        mask = ops.any(ops.stack([padding_mask(inputs[m]) for m in names], axis=0), axis=0)  # (B, T)
        if self.stock:
            unimodal, u = per_step_reference(self, inputs, mask, training)
        else:
            unimodal, u = self._memory(inputs, mask)
        fused = ops.concatenate(list(unimodal.values()) + [u], axis=-1)
        outputs = {"unimodal": unimodal, "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self._head_output(self.head(fused, training=training))
        return outputs

    def _memory(self, inputs, mask):
        """({m: h_T}, u_T), every network but u's update run over all steps at once.

        The views' LSTMs do not read u, so each runs over its whole sequence first (`recurrent.lstm_sequences`,
        skipping padding steps, which carry the state); c^[t-1,t] and the networks D_a, D_u, D_γ1, D_γ2 then act on
        every step in one call each, and only u_t = γ1 u_{t-1} + γ2 û_t (eq. 5) runs step by step.
        """
        names = self.modality_names
        batch = ops.shape(inputs[names[0]])[0]
        dtype = self.cells[names[0]].compute_dtype  # float16 or bfloat16 under mixed precision
        zeros = ops.zeros((batch, self.units), dtype)
        unimodal, cells = {}, []
        for m in names:
            cell = self.cells[m]
            if not cell.built:
                cell.build(inputs[m].shape[:1] + inputs[m].shape[2:])
            weights = [w if w.dtype == dtype else ops.cast(w, dtype)
                       for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]
            _, c, (h, _) = recurrent.lstm_sequences(ops.cast(inputs[m], dtype), mask, *weights, zeros, zeros,
                                                    cell_states=True)
            unimodal[m] = h
            cells.append(c)
        after = ops.concatenate(cells, axis=-1)  # (B, T, sum d_m): c_t, carried over padding steps
        before = ops.concatenate([ops.zeros_like(after[:, :1]), after[:, :-1]], axis=1)
        memories = ops.concatenate([before, after], axis=-1)
        attended = memories * self.attention(memories)
        # u_t = a_t u_{t-1} + b_t, with a_t = γ1, b_t = γ2 û_t at real steps and a_t = 1, b_t = 0 at padding
        keep = ops.cast(mask, attended.dtype)[..., None]
        decay = keep * self.retain(attended) + (1 - keep)
        added = keep * self.update(attended) * self.proposal(attended)
        u = ops.zeros((batch, self.memory), added.dtype)
        for t in range(self.modalities[0].shape[0]):
            u = decay[:, t] * u + added[:, t]
        return unimodal, u

    def get_config(self):
        return {**super().get_config(), "units": self.units, "memory": self.memory,
                "attention_hidden": self.attention_hidden, "hidden": list(self.hidden), "dropout": self.dropout}


def per_step_reference(model, inputs, mask, training=None):
    """MFN's equations one step at a time with `keras.layers.LSTMCell` (the stock formulation of `MFN._memory`).

    Returns ({m: h_T}, u_T). Used by `stock_formulation()` models: the benchmarks' and tests' reference.
    """
    names = model.modality_names
    batch = ops.shape(inputs[names[0]])[0]
    zeros = ops.zeros((batch, model.units))
    states = {m: [zeros, zeros] for m in names}
    u = ops.zeros((batch, model.memory))
    for t in range(model.modalities[0].shape[0]):
        keep = ops.cast(mask[:, t, None], u.dtype)
        before = ops.concatenate([states[m][1] for m in names], axis=-1)
        for m in names:
            _, (h, c) = model.cells[m](inputs[m][:, t], states[m], training=training)
            states[m] = [keep * h + (1 - keep) * states[m][0], keep * c + (1 - keep) * states[m][1]]
        memories = ops.concatenate([before] + [states[m][1] for m in names], axis=-1)
        attended = memories * model.attention(memories)
        proposed = model.retain(attended) * u + model.update(attended) * model.proposal(attended)
        u = keep * proposed + (1 - keep) * u
    return {m: states[m][0] for m in names}, u
