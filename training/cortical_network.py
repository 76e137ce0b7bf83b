"""The C-Network of Shankar's synergy regulariser (arXiv 2110.00385, section 4 and Appendix D): the training-only
networks that measure L_reg = gamma_l2 L_L2 + gamma_d L_d + gamma_kappa L_kappa on a model's Z_1..Z_M and Z.

- Reconstruction: Q_i, a four-layer LeakyReLU network as in the paper's appendix D (three hidden layers of
  `hidden` units, then a linear output), predicts Z_i from the concatenated Z_{-i};
  L_L2 = sum_i mean_batch ||Q_i(Z_{-i}) - Z_i||^2. The main text's target is Z_i (default); Appendix D writes the
  fused Z (`target="fused"`).
- Alignment: L_d = sum_i d(p(g_i(Z_i)), p(g_i(Z))). g_i is, as section 4.1 describes it, a random projection
  (here fixed, to `projection_dim`) followed by an invertible network: affine coupling layers (Dinh et al. 2017),
  so that g_i cannot collapse both distributions to one point and make any divergence 0; the couplings' scale and
  shift networks are the four-layer LeakyReLU MLPs of Appendix D. Z_i and Z differ in
  size, so g_i holds two fixed projections (one per input size) in front of one shared coupling stack: this is the
  choice where the paper leaves the sizes open. d is `mmd`, or KL through the Donsker-Varadhan bound with a critic
  T_i per modality. The critic estimates the divergence, so it must ascend the bound while every other weight
  descends it; Appendix D's single descent step on L_reg cannot train a critic. `Critic` reverses the gradient
  reaching its own weights (not its input), so one descent step on L_reg is ascent for the critics.
- Kurtosis: L_kappa = sum over Z_1..Z_M, Z of `regularised_kurtosis` with S the bias-corrected exponential moving
  average (decay alpha) of batch covariances, held constant for the gradient and kept as non-trainable state
  (updated in training only). Feature sets larger than `kurtosis_dim` are measured through a fixed random projection
  (a TFN's Z has (d + 1)^3 features, whose covariance could not be inverted every step). The difference vectors
  Z_diff enter the covariance update clipped to `max_norm`, as in Appendix D. Three departures from the paper's
  appendix D, each chosen:
  * The paper clips Z_diff only where they enter the covariance update; here they are clipped inside the quadratic
    form too, which bounds each example's term, so one outlier cannot dominate the loss or its gradient.
  * The paper writes S = alpha S + batch covariance, a sum that grows to 1 / (1 - alpha) times the covariance and
    starts at one batch: read literally, it scales the kurtosis by (1 - alpha)^2 once warmed up. Here S is the
    average alpha S + (1 - alpha) batch, divided by 1 - alpha^t after t updates (Adam's bias correction), so that S
    estimates the covariance from the first step on and gamma_kappa keeps its meaning.
  * The random projection above `kurtosis_dim` features: the paper's feature sets are small enough to invert.

Under `tf.distribute` the model gathers Z_i and Z from all replicas first, so the batch statistics (MMD, covariance)
are those of the global batch, exactly as on one device.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from .synergy import SynergyConfig, clipped_covariance, donsker_varadhan, mmd, regularised_kurtosis


MLP_LAYERS = 4  # Q_i and g_i of the paper's appendix D: four-layer LeakyReLU networks


def leaky_mlp(hidden, units, name=None):
    """`MLP_LAYERS` dense layers: LeakyReLU hidden layers of `hidden` units, then a linear one of `units`."""
    return keras.Sequential([layers.Dense(hidden, activation="leaky_relu") for _ in range(MLP_LAYERS - 1)]
                            + [layers.Dense(units)], name=name)


@tf.custom_gradient
def _reverse_gradient(x):
    return tf.identity(x), lambda upstream: -upstream


@keras.saving.register_keras_serializable(package="multisensory")
class FixedProjection(layers.Layer):
    """x W with W (d, units) drawn once from N(0, 1/d) (seeded) and never trained."""

    def __init__(self, units, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.seed = units, seed

    def build(self, input_shape):
        scale = float(input_shape[-1]) ** -0.5
        self.kernel = self.add_weight((input_shape[-1], self.units), trainable=False, name="kernel",
                                      initializer=keras.initializers.RandomNormal(stddev=scale, seed=self.seed))

    def call(self, x):
        return ops.matmul(x, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed}


@keras.saving.register_keras_serializable(package="multisensory")
class AffineCoupling(layers.Layer):
    """u = [a, b] -> [b ⊙ exp(s(a)) + t(a), a]: invertible (`inverse`), the halves swapped for the next layer.

    s = tanh of the network's first output half, for stability.
    """

    def __init__(self, hidden=32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        size = input_shape[-1]
        self.split = size // 2
        self.net = leaky_mlp(self.hidden, 2 * (size - self.split))
        self.net.build((None, self.split))

    def _scale_shift(self, a):
        s, t = ops.split(self.net(a), 2, axis=-1)
        return ops.tanh(s), t

    def call(self, u):
        a, b = u[:, :self.split], u[:, self.split:]
        s, t = self._scale_shift(a)
        return ops.concatenate([b * ops.exp(s) + t, a], axis=-1)

    def inverse(self, v):
        b_out, a = v[:, :v.shape[-1] - self.split], v[:, v.shape[-1] - self.split:]
        s, t = self._scale_shift(a)
        return ops.concatenate([a, (b_out - t) * ops.exp(-s)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="multisensory")
class AlignmentMap(layers.Layer):
    """g_i: a fixed random projection per input size, then `coupling_layers` affine couplings shared by both inputs."""

    def __init__(self, units, coupling_layers=2, hidden=32, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.coupling_layers, self.hidden, self.seed = units, coupling_layers, hidden, seed
        self.unimodal_projection = FixedProjection(units, seed, name="unimodal_projection")
        self.fused_projection = FixedProjection(units, seed + 1, name="fused_projection")
        self.couplings = [AffineCoupling(hidden, name=f"coupling_{k}") for k in range(coupling_layers)]

    def build(self, unimodal_shape, fused_shape):
        self.unimodal_projection.build(unimodal_shape)
        self.fused_projection.build(fused_shape)
        for coupling in self.couplings:
            coupling.build((None, self.units))

    def flow(self, u):
        for coupling in self.couplings:
            u = coupling(u)
        return u

    def call(self, unimodal, fused):
        return self.flow(self.unimodal_projection(unimodal)), self.flow(self.fused_projection(fused))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "coupling_layers": self.coupling_layers,
                "hidden": self.hidden, "seed": self.seed}


@keras.saving.register_keras_serializable(package="multisensory")
class Critic(layers.Layer):
    """T(u) = w2 . relu(W1 u + b1) whose weights receive the negated gradient (they ascend what others descend).

    No output bias: the Donsker-Varadhan bound does not change when a constant is added to T.
    """

    def __init__(self, hidden=32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        self.w1 = self.add_weight((input_shape[-1], self.hidden), initializer="glorot_uniform", name="w1")
        self.b1 = self.add_weight((self.hidden,), initializer="zeros", name="b1")
        self.w2 = self.add_weight((self.hidden, 1), initializer="glorot_uniform", name="w2")

    def call(self, u):
        w1, b1, w2 = (_reverse_gradient(tf.convert_to_tensor(w.value)) for w in (self.w1, self.b1, self.w2))
        return ops.squeeze(ops.matmul(ops.relu(ops.matmul(u, w1) + b1), w2), -1)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="multisensory")
class CNetwork(layers.Layer):
    """The C-Network: Q_i, g_i, the critics (for "kl") and the kurtosis state; `call` returns the raw terms
    {"l2", "divergence", "kurtosis"} for the unimodal {modality: Z_i} and the fused Z (see the module docstring).

    Args:
        synergy: `SynergyConfig` (or its config).
        modality_names: the modalities, in order.
    """

    def __init__(self, synergy, modality_names, **kwargs):
        super().__init__(**kwargs)
        self.synergy = SynergyConfig.from_config(synergy)
        self.modality_names = tuple(modality_names)
        if len(self.modality_names) < 2:
            raise ValueError(f"The synergy regulariser needs at least two modalities; got {list(self.modality_names)}.")
        s = self.synergy
        self.alignments = {m: AlignmentMap(s.projection_dim, s.coupling_layers, s.hidden, seed=s.seed + 2 * k,
                                           name=f"g_{m}") for k, m in enumerate(self.modality_names)}
        self.critics = ({m: Critic(s.hidden, name=f"critic_{m}") for m in self.modality_names}
                        if s.divergence == "kl" else {})
        self.feature_sets = self.modality_names + ("fused",)
        self.trackers = {k: keras.metrics.Mean(name=f"synergy_{k}") for k in ("l2", "divergence", "kurtosis")}

    def build(self, unimodal_shape, fused_shape):
        s = self.synergy
        shapes = {**unimodal_shape, "fused": fused_shape}
        self.sizes = {k: int(shape[-1]) for k, shape in shapes.items()}
        self.reconstructions = {}
        for m in self.modality_names:
            target = shapes["fused" if s.target == "fused" else m][-1]
            self.reconstructions[m] = leaky_mlp(s.hidden, target, name=f"q_{m}")
            self.reconstructions[m].build((None, sum(unimodal_shape[o][-1] for o in self.modality_names if o != m)))
            self.alignments[m].build(unimodal_shape[m], fused_shape)
            if m in self.critics:
                self.critics[m].build((None, s.projection_dim))
        self.kurtosis_projections = {
            k: FixedProjection(s.kurtosis_dim, s.seed + 100 + j, name=f"kurtosis_projection_{k}")
            for j, k in enumerate(self.feature_sets) if shapes[k][-1] > s.kurtosis_dim}
        self.covariances = {}
        for k in self.feature_sets:
            size = shapes[k][-1]
            if k in self.kurtosis_projections:
                self.kurtosis_projections[k].build(shapes[k])
                size = s.kurtosis_dim
            self.covariances[k] = self.add_weight((size, size), initializer="zeros", trainable=False,
                                                  aggregation="mean", name=f"covariance_{k}")
        self.updates = self.add_weight((), initializer="zeros", trainable=False, aggregation="mean", name="updates")

    def reconstruction(self, unimodal, fused):
        total = 0.0
        for m in self.modality_names:
            others = ops.concatenate([unimodal[o] for o in self.modality_names if o != m], axis=-1)
            target = fused if self.synergy.target == "fused" else unimodal[m]
            total += ops.mean(ops.sum(ops.square(self.reconstructions[m](others) - target), axis=-1))
        return total

    def divergence(self, unimodal, fused):
        total = 0.0
        for m in self.modality_names:
            p, q = self.alignments[m](unimodal[m], fused)
            if self.synergy.divergence == "mmd":
                total += mmd(p, q, self.synergy.bandwidth)
            else:
                total += donsker_varadhan(self.critics[m](p), self.critics[m](q))
        return total

    def kurtosis(self, unimodal, fused, training=False):
        s, total = self.synergy, 0.0
        features = {**unimodal, "fused": fused}
        bias_correction = 1.0 - s.decay ** (self.updates + 1.0)
        for k in self.feature_sets:
            z = features[k]
            if k in self.kurtosis_projections:
                z = self.kurtosis_projections[k](z)
            average = s.decay * self.covariances[k] + (1.0 - s.decay) * ops.stop_gradient(
                clipped_covariance(z, s.max_norm))
            if training:
                self.covariances[k].assign(average)
            total += regularised_kurtosis(z, average / bias_correction, s.max_norm, s.ridge)
        if training:
            self.updates.assign_add(1.0)
        return total

    def call(self, unimodal, fused, training=False):
        terms = {"l2": self.reconstruction(unimodal, fused), "divergence": self.divergence(unimodal, fused),
                 "kurtosis": self.kurtosis(unimodal, fused, training)}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return terms

    def regulariser(self, terms):
        """L_reg from the raw terms."""
        s = self.synergy
        return s.gamma_l2 * terms["l2"] + s.gamma_d * terms["divergence"] + s.gamma_kappa * terms["kurtosis"]

    def get_config(self):
        return {**super().get_config(), "synergy": self.synergy.get_config(),
                "modality_names": list(self.modality_names)}
