"""`ConvLSTMFusion`: a convolutional LSTM whose gates also see a vector per timestep (Barnum et al. 2020, A.1).

At every spatial position the gates (i, f, g, o) are computed from the spatial input under the kernel, the hidden
state under the kernel and the timestep's vector (the same vector at every position):

    z_t = W_x * x_t + W_h * h_{t-1} + W_a a_t + b,      i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g),
    c_t = f c_{t-1} + i g,      h_t = o tanh(c_t),      h_0 = c_0 = 0,

with `*` a "same" convolution, W_a a_t added at every position, and the forget-gate bias initialised to 1.
The spatial input is either static (an image, x_t = v for every t) or a sequence; the vector input (an audio
spectrogram, or an audio LSTM's outputs) supplies the time axis when the spatial input is static.

Computed with the structure of the problem instead of per step: W_x * v once for a static image, W_x * x_t for
all timesteps in one convolution for a sequence, W_a a_t for all timesteps in one matrix product, and only the
recurrent convolution, its four gates fused into one, inside the loop over time (none at the first step, where
h_0 = 0). `per_step_reference` computes the
same mathematics the plain way (one convolution of [x_t, h_{t-1}] and a dense map of a_t at every step) for tests
and benchmarks.
"""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="multisensory")
class ConvLSTMFusion(keras.layers.Layer):
    """Convolutional LSTM over a static or sequential spatial input, optionally driven by a vector sequence.

    Called as `layer(spatial, vector=None)` with `spatial` (batch, H, W, C) (static) or (batch, T, H, W, C) and
    `vector` (batch, T, D); returns h_T (batch, H, W, filters), or every h_t (batch, T, H, W, filters) with
    `return_sequences=True`.

    Args:
        filters: int. Channels of the hidden state.
        kernel_size: int. Size of the square kernels of W_x and W_h.
        return_sequences: bool. Return every h_t instead of the last.
    """

    def __init__(self, filters=64, kernel_size=3, return_sequences=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.return_sequences = filters, kernel_size, return_sequences

    def build(self, spatial_shape, vector_shape=None):
        k, f = self.kernel_size, self.filters
        self.input_kernel = self.add_weight((k, k, spatial_shape[-1], 4 * f), initializer="glorot_uniform",
                                            name="input_kernel")
        self.recurrent_kernel = self.add_weight((k, k, f, 4 * f), initializer="orthogonal", name="recurrent_kernel")
        self.vector_kernel = None if vector_shape is None else self.add_weight(
            (vector_shape[-1], 4 * f), initializer="glorot_uniform", name="vector_kernel")
        self.bias = self.add_weight((4 * f,), initializer=keras.initializers.Constant(
            [0.0] * f + [1.0] * f + [0.0] * 2 * f), name="bias")

    def _conv(self, x, kernel):
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

    def _gates(self, z, c):
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(i) * ops.tanh(g) if c is None else ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c), c

    def call(self, spatial, vector=None):
        """Every step's input term x_steps[t] = W_x * x_t + b, then the recurrence."""
        if len(spatial.shape) == 4:  # a static image: one convolution serves every step
            x_steps = [self._conv(spatial, self.input_kernel) + self.bias] * vector.shape[1]
        else:  # all timesteps in one convolution, then split once (a per-step slice's gradient would be full-size)
            flat = ops.reshape(spatial, (-1,) + tuple(spatial.shape[2:]))
            x_term = self._conv(flat, self.input_kernel) + self.bias
            x_term = ops.reshape(x_term, (ops.shape(spatial)[0], spatial.shape[1]) + tuple(x_term.shape[1:]))
            x_steps = ops.unstack(x_term, spatial.shape[1], axis=1)
        a_term = None if vector is None else ops.einsum("btd,dg->btg", vector, self.vector_kernel)
        h = c = None  # h_0 = c_0 = 0: the first step has no recurrent term and no forget term
        outputs = []
        for t, z in enumerate(x_steps):
            if h is not None:
                z = z + self._conv(h, self.recurrent_kernel)
            if a_term is not None:
                z = z + a_term[:, t, None, None, :]
            h, c = self._gates(z, c)
            outputs.append(h)
        return ops.stack(outputs, axis=1) if self.return_sequences else h

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "return_sequences": self.return_sequences}


def per_step_reference(layer, spatial, vector=None):
    """The same layer computed the plain way: conv([x_t, h_{t-1}]) + W_a a_t at every step (for tests)."""
    kernel = ops.concatenate([layer.input_kernel, layer.recurrent_kernel], axis=2)
    static = len(spatial.shape) == 4
    steps = vector.shape[1] if static else spatial.shape[1]
    frame = spatial if static else spatial[:, 0]
    h = ops.zeros(tuple(ops.shape(frame)[:3]) + (layer.filters,))
    c, outputs = h, []
    for t in range(steps):
        x = spatial if static else spatial[:, t]
        z = layer._conv(ops.concatenate([x, h], axis=-1), kernel) + layer.bias
        if vector is not None:
            z = z + ops.matmul(vector[:, t], layer.vector_kernel)[:, None, None, :]
        h, c = layer._gates(z, c)
        outputs.append(h)
    return ops.stack(outputs, axis=1) if layer.return_sequences else h
