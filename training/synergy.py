"""Measures of Shankar's cortical-network synergy regulariser ("Multimodal fusion via cortical network inspired
losses", arXiv 2110.00385, section 4 and Appendix D).

- `mmd(x, y)`: the unbiased estimator of the squared maximum mean discrepancy (Gretton et al. 2012, eq. 3) with a
  Gaussian kernel k(a, b) = exp(-||a - b||^2 / (2 sigma^2)):
      MMD^2 = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j).
  Without a bandwidth, sigma^2 is half the median squared distance between distinct points of the pooled sample
  (the median heuristic), held constant for the gradient; a list of bandwidths averages their kernels (a mixture).
  The estimate can be slightly negative when the distributions are equal.
- `kurtosis(z)`: Mardia's multivariate kurtosis of a batch, (1/N) sum_j [(z_j - mean)^T S^{-1} (z_j - mean)]^2 with
  S the (1/N) sample covariance: p(p + 2) for a Gaussian in p dimensions. This is the plain estimator; the paper's
  training-time version adds clipping, a ridge and a moving-average covariance.
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
        sigmas2 = [ops.stop_gradient(distinct[tf.shape(distinct)[0] // 2]) / 2.0]
    else:
        sigmas2 = [float(s) ** 2 for s in (bandwidth if isinstance(bandwidth, (list, tuple)) else [bandwidth])]

    def kernel(d):
        return sum(ops.exp(-d / (2.0 * s2)) for s2 in sigmas2) / len(sigmas2)

    n_f, m_f = ops.cast(n, "float32"), ops.cast(m, "float32")
    kxx = (ops.sum(kernel(xx)) - n_f) / (n_f * (n_f - 1.0))  # the diagonal holds k(x_i, x_i) = 1
    kyy = (ops.sum(kernel(yy)) - m_f) / (m_f * (m_f - 1.0))
    return kxx + kyy - 2.0 * ops.mean(kernel(xy))


def kurtosis(z):
    """Mardia's multivariate kurtosis of a batch z (N, p) (see the module docstring)."""
    z = ops.convert_to_tensor(z, "float32")
    centred = z - ops.mean(z, axis=0, keepdims=True)
    covariance = ops.matmul(ops.transpose(centred), centred) / ops.cast(ops.shape(z)[0], "float32")
    mahalanobis = ops.sum(centred * ops.transpose(ops.solve(covariance, ops.transpose(centred))), axis=-1)
    return ops.mean(ops.square(mahalanobis))
