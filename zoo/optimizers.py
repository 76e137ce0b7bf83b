"""`Adam` and `AdamW`: Keras' optimisers whose update of each variable is one fused TensorFlow kernel.

Adam (Kingma & Ba 2015, Algorithm 1, in the "epsilon hat" form Keras uses): with g the gradient and t the step,
m <- m + (g - m)(1 - beta_1), v <- v + (g^2 - v)(1 - beta_2),
w <- w - alpha m / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t).
`keras.optimizers.Adam` writes these as about 39 TensorFlow ops per variable; here, on the TensorFlow backend, the
three updates are `tf.raw_ops.ResourceApplyAdam`, one CPU/GPU kernel holding exactly these equations, and the
scalars it takes, made once per step. The steps run the same either way; what shrinks is the training function's
graph, which TensorFlow traces, optimises and instantiates before the first step (a synergy model's graph holds two
optimisers' updates: `benchmarks/optimizers.py` measures both). The only numerical difference: the kernel takes
1 - beta in float32 arithmetic, Keras in float64 then rounded (1 - 0.9: 0.100000024 against 0.1; 1 - 0.999:
0.0009999871 against 0.001, 1.3e-5 relative), so runs drift apart by rounding, as on different hardware.

Everything else is Keras': the configuration, the slots (`m`, `v`: checkpoints move between the two), weight
decay (`AdamW`'s decoupled decay, before the update), `clipnorm` / `clipvalue`, schedules, EMA, loss scaling and
`tf.distribute` (the kernel updates each replica's copy inside the strategy's update, as Keras' ops do). `amsgrad`,
sparse gradients (`tf.IndexedSlices`) and other backends take Keras' own update.

The zoo's defaults use these (`FusionModel.compile`, the synergy regulariser's C-Network optimiser); an optimiser
passed to `compile` is used as it is.
"""

import weakref

import keras
import tensorflow as tf


_SCALARS = weakref.WeakKeyDictionary()  # optimiser -> {dtype: the kernel's scalar arguments}, during its `apply`


class _FusedAdamUpdate:
    """`update_step` of Keras' Adam as one `ResourceApplyAdam` kernel (see the module docstring); the kernel's scalars
    (the step's beta powers, the learning rate, ...) are made once per `apply` and dtype, not once per variable, and
    kept outside the optimiser, whose attributes Keras and TensorFlow track for checkpoints."""

    def apply(self, grads, trainable_variables=None):
        _SCALARS[self] = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            _SCALARS.pop(self, None)

    def update_step(self, gradient, variable, learning_rate):
        if (keras.backend.backend() != "tensorflow" or self.amsgrad
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(var=_handle(variable), m=_handle(m), v=_handle(v),
                                     grad=tf.cast(gradient, variable.dtype),
                                     **self._scalars(variable.dtype, learning_rate))

    def _scalars(self, dtype, learning_rate):
        """The kernel's scalar arguments in `dtype`, made by the first update of this `apply` (where Keras' update
        reads the step count too)."""
        made = _SCALARS.get(self, {})
        if dtype not in made:
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
            made[dtype] = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                               lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
                               epsilon=tf.constant(self.epsilon, dtype))
        return made[dtype]


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (inside a strategy's update: this replica's copy)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="multisensory")
class Adam(_FusedAdamUpdate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments) with the fused update (see the module docstring)."""


@keras.saving.register_keras_serializable(package="multisensory")
class AdamW(_FusedAdamUpdate, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` (same arguments) with the fused update (see the module docstring)."""
