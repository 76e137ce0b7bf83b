"""Shankar's cortical-network synergy regulariser ("Multimodal fusion via cortical network inspired losses",
arXiv 2110.00385, section 4 and Appendices C-D): its measures and its configuration.

- `mmd(x, y)`: the unbiased estimator of the squared maximum mean discrepancy (Gretton et al. 2012, eq. 3) with a
  Gaussian kernel k(a, b) = exp(-||a - b||^2 / (2 sigma^2)):
      MMD^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j).
  Without a bandwidth, sigma^2 is half the median squared distance between distinct points of the pooled sample
  (the median heuristic), held constant for the gradient; a list of bandwidths averages their kernels (a mixture).
  The estimate can be slightly negative when the distributions are equal. With fewer than two points in either
  sample the within-sample sums are empty and the estimator is undefined: it is 0 there (no gradient), so that the
  last, incomplete batch of an epoch (down to a single example) cannot turn weights into NaN.
- `donsker_varadhan(t_p, t_q)`: the Donsker-Varadhan lower bound KL(P || Q) >= E_P[T] - log E_Q[exp T] from a
  critic T's values on samples of P and of Q (Belghazi et al. 2018, MINE). Equality holds for T = log dP/dQ + const.
- `kurtosis(z)`: Mardia's multivariate kurtosis of a batch, (1/N) sum_j [(z_j - mean)^T S^{-1} (z_j - mean)]^2 with
  S the (1/N) sample covariance: p(p + 2) for a Gaussian in p dimensions. `regularised_kurtosis` is the paper's
  training-time form: difference vectors clipped to a maximum norm, a ridge c added to the diagonal of S, and S
  given (in training, the moving average of batch covariances kept by the C-Network).
- `SynergyConfig`: the regulariser's weights and settings; `zoo.create(name, info, synergy=SynergyConfig(...))`.
"""

import tensorflow as tf
from keras import ops


def _squared_distances(a, b):
    return ops.maximum(ops.sum(a * a, -1)[:, None] + ops.sum(b * b, -1)[None, :] - 2.0 * ops.matmul(a, ops.transpose(b)),
                       0.0)


def mmd(x, y, bandwidth=None):
    """Unbiased squared MMD between samples x (n, d) and y (m, d) with a Gaussian kernel (see the module docstring).

    Args:
        bandwidth: float or list of float. sigma (or several, averaged); `None` for the median heuristic.
    """
    x, y = ops.convert_to_tensor(x, "float32"), ops.convert_to_tensor(y, "float32")
    n, m = ops.shape(x)[0], ops.shape(y)[0]
    xx, yy, xy = _squared_distances(x, x), _squared_distances(y, y), _squared_distances(x, y)
    if bandwidth is None:
        pooled = ops.concatenate([x, y], axis=0)
        d = _squared_distances(pooled, pooled)
        strictly_upper = tf.linalg.band_part(tf.ones_like(d), 0, -1) - tf.linalg.band_part(tf.ones_like(d), 0, 0)
        distinct = tf.sort(tf.boolean_mask(d, strictly_upper > 0))
        sigmas2 = [ops.maximum(ops.stop_gradient(distinct[tf.shape(distinct)[0] // 2]) / 2.0, 1e-12)]  # all equal: 0
    else:
        sigmas2 = [float(s) ** 2 for s in (bandwidth if isinstance(bandwidth, (list, tuple)) else [bandwidth])]

    def kernel(d):
        return sum(ops.exp(-d / (2.0 * s2)) for s2 in sigmas2) / len(sigmas2)

    n_f, m_f = ops.cast(n, "float32"), ops.cast(m, "float32")
    # The diagonal holds k(x_i, x_i) = 1. Denominators are kept >= 1 so that no branch divides by zero: a NaN in
    # the unused branch of `where` would still reach the gradient.
    kxx = (ops.sum(kernel(xx)) - n_f) / ops.maximum(n_f * (n_f - 1.0), 1.0)
    kyy = (ops.sum(kernel(yy)) - m_f) / ops.maximum(m_f * (m_f - 1.0), 1.0)
    estimate = kxx + kyy - 2.0 * ops.mean(kernel(xy))
    return ops.where(ops.minimum(n_f, m_f) >= 2.0, estimate, 0.0)


def donsker_varadhan(t_p, t_q):
    """E_P[T] - log E_Q[exp T] from critic values t_p (on samples of P) and t_q (on samples of Q); <= KL(P || Q)."""
    t_p, t_q = ops.reshape(t_p, (-1,)), ops.reshape(t_q, (-1,))
    return ops.mean(t_p) - (ops.logsumexp(t_q) - ops.log(ops.cast(ops.shape(t_q)[0], t_q.dtype)))


def batch_covariance(z):
    """The (1/N) sample covariance of a batch z (N, p)."""
    return clipped_covariance(z)


def clipped_covariance(z, max_norm=None):
    """(1/N) sum_j d_j d_j^T of a batch z (N, p) with d_j = z_j - mean clipped to `max_norm` (Appendix D's Z_diff,
    clipped where they enter the covariance update); `batch_covariance` without clipping."""
    centred = z - ops.mean(z, axis=0, keepdims=True)
    if max_norm is not None:
        centred = clip_rows(centred, max_norm)
    return ops.matmul(ops.transpose(centred), centred) / ops.cast(ops.shape(z)[0], z.dtype)


def clip_rows(x, max_norm):
    """Each row of x scaled down to Euclidean norm at most `max_norm`."""
    norms = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x * ops.minimum(1.0, max_norm / ops.maximum(norms, 1e-12))


def regularised_kurtosis(z, covariance, max_norm=None, ridge=0.0):
    """(1/N) sum_j [d_j^T (S + ridge I)^{-1} d_j]^2 with d_j = z_j - mean, clipped to `max_norm` when given."""
    z = ops.convert_to_tensor(z, "float32")
    centred = z - ops.mean(z, axis=0, keepdims=True)
    if max_norm is not None:
        centred = clip_rows(centred, max_norm)
    regularised = covariance + ridge * ops.eye(ops.shape(covariance)[0], dtype=covariance.dtype)
    mahalanobis = ops.sum(centred * ops.transpose(ops.solve(regularised, ops.transpose(centred))), axis=-1)
    return ops.mean(ops.square(mahalanobis))


def kurtosis(z):
    """Mardia's multivariate kurtosis of a batch z (N, p) (see the module docstring)."""
    z = ops.convert_to_tensor(z, "float32")
    return regularised_kurtosis(z, batch_covariance(z))


class SynergyConfig:
    """Settings of the synergy regulariser L_reg = gamma_l2 L_L2 + gamma_d L_d + gamma_kappa L_kappa.

    The C-Network (`multisensory.training.cortical_network.CNetwork`) learns from L_reg alone with its own AdamW
    (`learning_rate` = eta_MI); the model's other weights minimise L_task + beta L_reg with the compiled optimiser.

    Args:
        beta: float. Weight of L_reg in the model's objective.
        gamma_l2, gamma_d, gamma_kappa: float. Weights of reconstruction, alignment and kurtosis. The kurtosis of
            p features is of order p(p + 2) and, against a covariance held constant, falls when the features
            shrink; at gamma_kappa = 1e-3 it cost `lmf` most of its accuracy on `synthetic_av` (docs/synergy.md),
            hence the default 1e-4.
        target: "unimodal" (Q_i predicts Z_i, the main text) or "fused" (Q_i predicts Z, Appendix D).
        divergence: "mmd" (unbiased squared MMD, Gaussian kernel) or "kl" (Donsker-Varadhan bound with a critic per
            modality that ascends the bound while everything else descends it).
        bandwidth: None (median heuristic), a float or a list of floats (a mixture) for "mmd".
        projection_dim: int. Size of g_i's fixed random projection.
        coupling_layers: int. Affine coupling layers of g_i after the projection.
        hidden: int. Hidden size of Q_i, of the coupling networks and of the critics.
        kurtosis_dim: int. Feature sets larger than this are measured through a fixed random projection to it.
        max_norm: float or None. Clipping norm of the kurtosis difference vectors.
        ridge: float. c, added to the covariance's diagonal.
        decay: float. alpha, the decay of the covariance's moving average.
        learning_rate: float. eta_MI, the C-Network's learning rate.
        clipvalue: float or None. Gradient clipping of both AdamW optimisers, each gradient element to
            [-clipvalue, clipvalue]: Appendix C's "gradient clipping with clip value of 5".
        clipnorm: float or None. Clipping of each gradient tensor's norm instead (the zoo's default before it
            followed Appendix C's clip value; a saved configuration with it keeps training as it did). At most one
            of the two is set.
        seed: int. Seed of the fixed random projections.
    """

    DIVERGENCES = ("mmd", "kl")
    TARGETS = ("unimodal", "fused")

    def __init__(self, beta=0.1, gamma_l2=1.0, gamma_d=1.0, gamma_kappa=1e-4, target="unimodal", divergence="mmd",
                 bandwidth=None, projection_dim=8, coupling_layers=2, hidden=32, kurtosis_dim=32, max_norm=10.0,
                 ridge=1e-3, decay=0.99, learning_rate=1e-3, clipvalue=None, clipnorm=None, seed=0):
        if divergence not in self.DIVERGENCES:
            raise ValueError(f"Unknown divergence '{divergence}'; choose one of {list(self.DIVERGENCES)}.")
        if target not in self.TARGETS:
            raise ValueError(f"Unknown reconstruction target '{target}'; choose one of {list(self.TARGETS)}.")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        if clipvalue is not None and clipnorm is not None:
            raise ValueError(f"Set at most one of clipvalue and clipnorm, got clipvalue={clipvalue}, "
                             f"clipnorm={clipnorm}.")
        if clipvalue is None and clipnorm is None:
            clipvalue = 5.0
        self.beta, self.gamma_l2, self.gamma_d, self.gamma_kappa = beta, gamma_l2, gamma_d, gamma_kappa
        self.target, self.divergence = target, divergence
        self.bandwidth = list(bandwidth) if isinstance(bandwidth, (list, tuple)) else bandwidth
        self.projection_dim, self.coupling_layers, self.hidden = projection_dim, coupling_layers, hidden
        self.kurtosis_dim, self.max_norm, self.ridge, self.decay = kurtosis_dim, max_norm, ridge, decay
        self.learning_rate, self.clipvalue, self.clipnorm, self.seed = learning_rate, clipvalue, clipnorm, seed

    @property
    def clipping(self):
        """{"clipvalue": ...} or {"clipnorm": ...}: the keyword of both AdamW optimisers."""
        return {"clipvalue": self.clipvalue} if self.clipvalue is not None else {"clipnorm": self.clipnorm}

    def optimizer(self):
        """The C-Network's optimiser: AdamW(eta_MI) with gradient clipping (Appendix C), Keras' with the fused update
        (`multisensory.zoo.optimizers`)."""
        from multisensory.zoo.optimizers import AdamW

        return AdamW(self.learning_rate, **self.clipping, name="c_network_adamw")

    def get_config(self):
        return dict(vars(self))

    @classmethod
    def from_config(cls, config):
        return config if isinstance(config, cls) else cls(**config)

    def __eq__(self, other):
        return isinstance(other, SynergyConfig) and vars(self) == vars(other)

    def __repr__(self):
        return f"SynergyConfig({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"
