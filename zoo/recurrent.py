"""The zoo's LSTM: Keras' LSTM equations with the input projection hoisted out of the time loop, a hand-written
backward pass and XLA-compiled loops, so a sequence costs one large matmul plus a lean loop of the recurrent part.

The equations are `keras.layers.LSTM`'s (Hochreiter & Schmidhuber 1997 with a forget gate; gate order i, f, c, o):
z_t = x_t K + b + h_{t-1} R, i = σ(z_i), f = σ(z_f), g = tanh(z_c), o = σ(z_o), c_t = f c_{t-1} + i g,
h_t = o tanh(c_t). `FastLSTM` has the weights, configuration and mask semantics of `keras.layers.LSTM` (a step whose
mask is False is skipped: the state is carried across it), and differs only in how the work is scheduled:
- x K + b for every step is one matmul before the loop (the stock cell multiplies one step at a time);
- masking gathers every sequence's unmasked steps to its front (order kept) before the loop and the outputs back
  after it, so the loop has no masking ops: a front-padded sequence runs exactly its real steps; a layer that
  returns only its last output takes it from the final state, so a traced function never gathers the sequence;
- the gradient (`lstm_scan`'s) is the LSTM's backward recursion, whose only per-step matmul is dz_t R^T; the
  gradient of R is one matmul over all steps, those of K and b follow from the projection's (TensorFlow's
  automatic gradient of a loop accumulates them one step at a time);
- the forward and backward loops are each one XLA computation (`compiled_loops`), which fuses a step's small
  element-wise ops; the large matmuls stay outside, in TensorFlow's oneDNN kernels. An eager call runs them as
  plain graph functions (XLA compiles for every new shape; in `fit`, `predict` and `evaluate` that pays off, in
  a one-off eager call it does not). Exports trace without XLA (the portable loop), and there batches of up to
  `fused_max_batch(inputs)` rows run as one `BlockLSTMV2` kernel, decided per call (`tf.cond` on the batch size):
  faster at small batches, slower at larger ones than the portable loop. An eager call under
  `compiled_loops(False)` decides the same way; a function traced under it outside an export runs the portable
  loop alone.
Input dropout (one mask per sequence, as the stock layer) is applied before the projection. Recurrent dropout,
other activations and `unroll` fall back to the stock loop. `stock_formulation()` builds stock layers instead, for
the benchmarks and the equivalence tests (`tests/test_recurrent.py`); `docs/performance.md` has the measurements.
"""

import contextlib

import keras
import tensorflow as tf

_STOCK = [False]


@contextlib.contextmanager
def stock_formulation():
    """Within this context, `LSTM(...)` builds `keras.layers.LSTM` (the reference formulation)."""
    _STOCK.append(True)
    try:
        yield
    finally:
        _STOCK.pop()


def is_stock():
    """Whether `stock_formulation()` is active (models with their own recurrences consult it when built)."""
    return _STOCK[-1]


def LSTM(units, **kwargs):
    """A `FastLSTM` (a `keras.layers.LSTM` under `stock_formulation()`), with `keras.layers.LSTM`'s arguments."""
    return (keras.layers.LSTM if _STOCK[-1] else FastLSTM)(units, **kwargs)


def Bidirectional(layer, **kwargs):
    """`keras.layers.Bidirectional(layer, **kwargs)`, holding on to `layer` for as long as the wrapper lives.

    The wrapper builds its forward and backward copies by serialising `layer`. While a model loads, Keras records
    every object it serialises by `id()` and hands a later object with a recorded id the copy made for the first
    (`serialization_lib.ObjectSharingScope`); a `layer` freed during the load lets a later one take its id, so a
    model that builds its Bidirectional layers in `__init__` fails to load now and then ("Forward layer and backward
    layer should have different `go_backwards` value"), depending on when the garbage collector runs. The reference
    is untracked: `layer` has no weights and is not saved.
    """
    wrapper = keras.layers.Bidirectional(layer, **kwargs)
    object.__setattr__(wrapper, "_serialised_layer", layer)
    return wrapper


def _forward(xw, recurrent_kernel, h0, c0):
    """The loop of `lstm_scan`: (h, c, activated gates [i, f, g, o]) of every step, time-major."""
    steps = tf.shape(xw)[0]

    def step(t, h, c, hs, cs, gates):
        z = xw[t] + tf.matmul(h, recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=-1)
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c = f * c + i * g
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gates.write(t, tf.concat([i, f, g, o], axis=-1))

    arrays = [tf.TensorArray(xw.dtype, size=steps, element_shape=s) for s in (h0.shape, c0.shape, xw.shape[1:])]
    _, _, _, hs, cs, gates = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, c0, *arrays),
                                           maximum_iterations=steps)
    return hs.stack(), cs.stack(), gates.stack()


def _backward(dh, dc, h, c, gates, recurrent_kernel, h0, c0):
    """The backward loop of `lstm_scan`: (dz of every step, dh_0, dc_0) from the gradients of h and c."""
    steps = tf.shape(h)[0]
    tanh_c = tf.tanh(c)
    c_prev = tf.concat([c0[None], c[:-1]], axis=0)
    i, f, g, o = tf.split(gates, 4, axis=-1)
    # dz_t = [dc_t, dc_t, dc_t, dh_t] * the gates' local derivatives, all computed before the loop
    local = tf.concat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g), tanh_c * o * (1 - o)], axis=-1)
    dc_direct = o * (1 - tanh_c * tanh_c)
    transposed = tf.transpose(recurrent_kernel)

    def back(t, dh_next, dc_next, dzs):
        dh_t = dh[t] + dh_next
        dc_t = dc_next + dh_t * dc_direct[t] + dc[t]
        dz = tf.concat([dc_t, dc_t, dc_t, dh_t], axis=-1) * local[t]
        return t - 1, tf.matmul(dz, transposed), dc_t * f[t], dzs.write(t, dz)

    dzs = tf.TensorArray(h.dtype, size=steps, element_shape=gates.shape[1:])
    initial = (steps - 1, tf.zeros_like(h0), tf.zeros_like(c0), dzs)
    _, dh0, dc0, dzs = tf.while_loop(lambda t, *_: t >= 0, back, initial, maximum_iterations=steps)
    return dzs.stack(), dh0, dc0


_forward_xla = tf.function(_forward, jit_compile=True, autograph=False)
_backward_xla = tf.function(_backward, jit_compile=True, autograph=False)
# an eager call is a one-off: XLA would compile its loops for each new shape (0.3-1 s each) to save milliseconds
_forward_graph = tf.function(_forward, autograph=False)
_backward_graph = tf.function(_backward, autograph=False)
_XLA = [True]


@contextlib.contextmanager
def compiled_loops(enabled):
    """Whether the loops traced within this context are XLA-compiled (default: yes).

    Exports trace with `compiled_loops(False)`: TF-Serving runs XLA on CPU only behind an experimental flag.
    """
    _XLA.append(bool(enabled))
    try:
        yield
    finally:
        _XLA.pop()


_STACKED = [None]


@contextlib.contextmanager
def stacked_weights(model):
    """Within this context (an export's tracing), the fused kernel of the portable loop reads each LSTM's [K; R]
    from a non-trainable variable, a copy of K and R as they are on entering, rather than concatenating K and R on
    every call. The copies are made here, one per `keras.layers.LSTMCell` of `model` (`FastLSTM`'s cell, MFN's
    views), before anything is traced: a `tf.function` that creates variables while tracing is traced twice. The
    copy is the export's: weights changed after the export are not in it. Copies are keyed by the weights' ids,
    which hold while the model (and so its weights) lives through the context.
    """
    copies = {}
    for cell in model._flatten_layers():
        if isinstance(cell, keras.layers.LSTMCell) and cell.built:
            copies[id(cell.kernel), id(cell.recurrent_kernel)] = tf.Variable(
                tf.concat([cell.kernel.value, cell.recurrent_kernel.value], 0), trainable=False,
                name=cell.kernel.path.replace("/", "_") + "_stacked")
    _STACKED.append(copies)
    try:
        yield
    finally:
        _STACKED.pop()


def _stacked(kernel, recurrent_kernel):
    """[K; R] of an LSTM's weight variables: the copy `stacked_weights(model)` made, when that context is active and
    the weights are one of the model's LSTM cells', else None."""
    return (_STACKED[-1] or {}).get((id(kernel), id(recurrent_kernel)))


@tf.custom_gradient
def lstm_scan(xw, recurrent_kernel, h0, c0):
    """The LSTM recursion over time-major projected inputs, with its backward pass.

    Args:
        xw: (T, B, 4U), x_t K + b for every step.
        recurrent_kernel: R, (U, 4U).
        h0, c0: (B, U), the initial state.

    Returns:
        (h, c): (T, B, U) each, the state after every step.
    """
    # the custom gradient is the only one: no tape records the loop (and none may cross the compiled function)
    xw, recurrent_kernel, h0, c0 = (tf.stop_gradient(v) for v in (xw, recurrent_kernel, h0, c0))
    if not _XLA[-1]:
        forward, backward = _forward, _backward
    elif tf.executing_eagerly():
        forward, backward = _forward_graph, _backward_graph
    else:
        forward, backward = _forward_xla, _backward_xla
    h, c, gates = forward(xw, recurrent_kernel, h0, c0)

    def grad(dh, dc):
        dz, dh0, dc0 = backward(*_defined(dh, dc, h, c), h, c, gates, recurrent_kernel, h0, c0)
        return dz, _recurrent_gradient(dz, h, h0), dh0, dc0

    return (h, c), grad


def _defined(dh, dc, h, c):
    """The gradients of h and c, zeros for one that is None (nothing downstream reads it)."""
    return tf.zeros_like(h) if dh is None else dh, tf.zeros_like(c) if dc is None else dc


def _recurrent_gradient(dz, h, h0):
    """The gradient of R: sum over steps of h_{t-1}^T dz_t, one matmul."""
    units = h.shape[-1]
    h_prev = tf.concat([h0[None], h[:-1]], axis=0)
    return tf.matmul(tf.reshape(h_prev, (-1, units)), tf.reshape(dz, (-1, 4 * units)), transpose_a=True)


@tf.custom_gradient
def _permute(x, indices, inverse):
    """tf.gather_nd(x, indices) where `indices` is a permutation with inverse `inverse`: its gradient is a gather."""
    def grad(dy):
        return tf.gather_nd(dy, inverse), None, None

    return tf.gather_nd(x, indices), grad


def step_order(mask):
    """Index maps between batch-major steps and time-major compacted ones, for a mask (B, T).

    Returns:
        (to_time, to_batch, count): gather_nd indices (T, B, 2) taking x (B, T, ...) to every row's unmasked steps
        first (order kept), time-major; their inverse (B, T, 2); and the number of unmasked steps (B,).
    """
    batch, steps = tf.shape(mask)[0], tf.shape(mask)[1]
    order = tf.argsort(tf.cast(tf.logical_not(mask), tf.int32), axis=1, stable=True)  # (B, T)
    inverse = tf.argsort(order, axis=1)
    rows = tf.broadcast_to(tf.range(batch)[:, None], (batch, steps))
    to_time = tf.transpose(tf.stack([rows, order], axis=-1), (1, 0, 2))
    to_batch = tf.stack([inverse, rows], axis=-1)
    return to_time, to_batch, tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)


def _carried(states, mask):
    """Batch-major (B, T, U) states of a compacted time-major scan (T, B, U): at step t the state after the real
    steps up to t (compacted index: their number - 1), zeros before the first."""
    seen = tf.cumsum(tf.cast(mask, tf.int32), axis=1)
    rows = tf.broadcast_to(tf.range(tf.shape(mask)[0])[:, None], tf.shape(mask))
    carried = tf.gather_nd(states, tf.stack([tf.maximum(seen - 1, 0), rows], axis=-1))
    return carried * tf.cast(seen > 0, states.dtype)[..., None]


def _projected_scan(x, kernel, recurrent_kernel, bias, h0, c0):
    """(h, c) of every step of time-major x (T, B, D): the projection x K + b as one matmul, then `lstm_scan`."""
    shape = tf.shape(x)
    xw = tf.reshape(tf.matmul(tf.reshape(x, (-1, x.shape[-1])), kernel) + bias,
                    tf.concat([shape[:2], tf.shape(kernel)[1:]], 0))
    return lstm_scan(xw, recurrent_kernel, h0, c0)


# The largest batch the portable loop runs as `_fused_scan`, by the LSTM's input width: the fused kernel multiplies
# each step's inputs by K inside its loop, where the portable loop projects all steps in one matmul before it, so
# the wider the inputs, the smaller the batch from which the portable loop is the faster (docs/performance.md)
FUSED_MAX_BATCH = 4  # inputs wider than FUSED_NARROW_INPUTS features
FUSED_MAX_BATCH_NARROW = 16
FUSED_NARROW_INPUTS = 128


def fused_max_batch(features):
    """The largest batch whose LSTM over inputs of `features` features the portable loop runs as one fused kernel."""
    return FUSED_MAX_BATCH_NARROW if features <= FUSED_NARROW_INPUTS else FUSED_MAX_BATCH


@tf.custom_gradient
def _fused_scan(x, kernel, recurrent_kernel, bias, h0, c0, steps, stacked):
    """`_projected_scan`'s (h, c) from `tf.raw_ops.BlockLSTMV2`, one CPU kernel for the whole sequence (gate order i,
    f, c, o, as Keras'; no peepholes, no clipping). Its step matmul [x_t, h] [K; R] (`stacked`) runs in Eigen:
    faster than the loop at batch 1, slower from a few rows on. It runs `steps` steps (a compacted batch's longest
    row); h and c are zero after them and the later steps of shorter rows are never read. The gradient is
    `lstm_scan`'s backward recursion on the kernel's gates (the op's registered gradient disagrees with the LSTM's in
    TensorFlow 2.21)."""
    x, kernel, recurrent_kernel, bias, h0, c0 = (tf.stop_gradient(v) for v in (x, kernel, recurrent_kernel, bias,
                                                                              h0, c0))
    no_peephole = tf.zeros(tf.shape(recurrent_kernel)[:1], x.dtype)
    i, c, f, o, g, _, h = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(steps, tf.int64), x=x, cs_prev=c0, h_prev=h0, w=stacked,
        wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=bias, cell_clip=-1.0, use_peephole=False)

    def grad(dh, dc):
        live = (tf.range(tf.shape(x)[0]) < steps)[:, None, None]  # the kernel leaves the gates after `steps` unset
        gates = tf.where(live, tf.concat([i, f, g, o], axis=-1), 0.0)
        dz, dh0, dc0 = _backward(*_defined(dh, dc, h, c), h, c, gates, recurrent_kernel, h0, c0)
        flat_x, flat_dz = tf.reshape(x, (-1, x.shape[-1])), tf.reshape(dz, (-1, dz.shape[-1]))
        dx = tf.reshape(tf.matmul(flat_dz, kernel, transpose_b=True), tf.shape(x))
        return (dx, tf.matmul(flat_x, flat_dz, transpose_a=True), _recurrent_gradient(dz, h, h0),
                tf.reduce_sum(flat_dz, 0), dh0, dc0, None, None)

    return (h, c), grad


def lstm_sequences(x, mask, kernel, recurrent_kernel, bias, h0, c0, go_backwards=False, carry_outputs=True,
                   cell_states=False):
    """An LSTM over x (B, T, D) that skips the steps where `mask` (B, T, or None) is False.

    Args:
        carry_outputs: bool. The output of a skipped step is the output before it (zeros before the first real
            step), as `keras.layers.LSTM`'s; False gives zeros there (`zero_output_for_mask`).
        cell_states: bool. Also return every step's cell state c (carried across skipped steps as the outputs).

    Returns:
        (outputs, (h, c)): outputs (B, T, U) in processing order (reversed with `go_backwards`), and the final state
        (B, U) each (the initial one for a row with no real step); with `cell_states`, (outputs, cells, (h, c)).
    """
    if go_backwards:
        x = tf.reverse(x, [1])
        mask = None if mask is None else tf.reverse(mask, [1])
    stacked = _stacked(kernel, recurrent_kernel)
    # the fused kernel (float32 only) runs in the portable loop of an export, or of an eager call; in a traced
    # function outside an export it would sit in a `tf.cond` whose gradient TensorFlow 2.21 cannot take under a
    # persistent tape (an assertion in cond_v2), which the synergy regulariser's training step uses
    fusable = (not _XLA[-1] and x.dtype == tf.float32
               and (stacked is not None or tf.executing_eagerly()))
    kernel, recurrent_kernel, bias = (tf.convert_to_tensor(w) for w in (kernel, recurrent_kernel, bias))
    static = x.shape[:2] + recurrent_kernel.shape[:1]
    if mask is None:
        x, count = tf.transpose(x, (1, 0, 2)), None
    else:
        to_time, to_batch, count = step_order(mask)
        x = _permute(x, to_time, to_batch)
    arguments = (x, kernel, recurrent_kernel, bias, h0, c0)
    if not fusable:
        h, c = _projected_scan(*arguments)
    else:  # one fused kernel for small batches
        steps = tf.shape(x)[0] if count is None else tf.reduce_max(count)

        def fused():
            w = tf.concat([kernel, recurrent_kernel], 0) if stacked is None else stacked
            return _fused_scan(*arguments, steps, w)

        h, c = tf.cond(tf.shape(x)[1] <= fused_max_batch(x.shape[-1]), fused, lambda: _projected_scan(*arguments))
    if mask is None:
        outputs, cells, state = tf.transpose(h, (1, 0, 2)), tf.transpose(c, (1, 0, 2)), (h[-1], c[-1])
    else:
        last = tf.stack([tf.maximum(count - 1, 0), tf.range(tf.shape(count)[0])], axis=-1)
        state = tuple(tf.where((count > 0)[:, None], tf.gather_nd(s, last), s0) for s, s0 in ((h, h0), (c, c0)))
        outputs = (_carried(h, mask) if carry_outputs
                   else _permute(h, to_batch, to_time) * tf.cast(mask, h.dtype)[..., None])
        cells = _carried(c, mask) if cell_states else None
    for sequence in (outputs, cells):
        if sequence is not None:
            sequence.set_shape(static)
    return (outputs, cells, state) if cell_states else (outputs, state)


@keras.saving.register_keras_serializable(package="multisensory")
class FastLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` computed with `lstm_sequences` (see the module docstring); same weights and config."""

    def _fast(self):
        cell = self.cell
        return (keras.backend.backend() == "tensorflow" and not cell.recurrent_dropout and cell.use_bias
                and not self.unroll and cell.activation is keras.activations.tanh
                and cell.recurrent_activation is keras.activations.sigmoid)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fast():
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if training and self.dropout:
            sequences = sequences * self.cell.get_dropout_mask(sequences[:, 0, :])[:, None, :]
        cell = self.cell
        outputs, state = lstm_sequences(sequences, mask, cell.kernel, cell.recurrent_kernel, cell.bias, *initial_state,
                                        go_backwards=self.go_backwards, carry_outputs=not self.zero_output_for_mask)
        if self.return_sequences:
            return outputs[:, -1], outputs, list(state)
        # the last output from the final state, so that a traced function without the sequence never computes it:
        # the state after the last real step, zeros for a row with none (or, with zero outputs on masked steps, for a
        # row whose last processed step is masked)
        if mask is None:
            return state[0], outputs, list(state)
        real = (tf.reduce_any(mask, axis=1) if not self.zero_output_for_mask
                else mask[:, 0] if self.go_backwards else mask[:, -1])
        return tf.where(real[:, None], state[0], tf.zeros_like(state[0])), outputs, list(state)
