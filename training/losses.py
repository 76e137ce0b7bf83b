"""The multiplicative combination of Liu, Li, Xu & Natarajan, "Learn to Combine Modalities in Multimodal Deep
Learning" (arXiv 1805.11730), section 3.

With M branches (modalities, or mixtures of them for MulMix) predicting class probabilities p_i (B, K), given as
log-probabilities log p_i (a log-softmax of each predictor's logits, as the authors' code computes them):

- down-weighting factor (eq. 8): q_i^c = [ prod_{j != i} (1 - p_j^c) ]^(beta / (M - 1)), computed in log space and
  treated as a constant for the gradient (a stop-gradient, as the authors' code does); with M = 1, q = 1;
- class loss: l^c = - sum_i w_i q_i^c log p_i^c, with optional per-branch weights w_i (1 by default; the paper uses
  0.3, 0.3, 1.0 for the three ResNet stages);
- loss (eq. 9): l^y for the true class y. beta = 0 gives q = 1: the sum of the branches' cross-entropies (eq. 6);
- prediction (eq. 7): the class with the smallest class loss, argmin_c l^c;
- boosted loss (eq. 10): an example contributes l^y only while it is not yet classified with a margin, i.e. unless
  l^y + delta <= l^c for every other class c; its loss is 0 once the true class's loss is smaller than every other
  class's loss by at least delta.

log p_i enters the loss as given, never clipped: clipping p at 1e-7 would zero the gradient of a confidently wrong
branch, the very branch the loss must correct. Only the constant factor q uses log(1 - p_j), computed as
log(max(1 - p_j, 1e-7)) so that a branch certain of class c (p_j^c = 1) gives q = 0 for the others, not NaN.
"""

import keras
from keras import ops

EPSILON = 1e-7


def class_losses(log_probs, beta, branch_weights=None):
    """l^c for every class: (B, K) from a list of M branch log-probabilities (B, K)."""
    return ops.sum(branch_terms(log_probs, beta, branch_weights), axis=1)


def branch_terms(log_probs, beta, branch_weights=None):
    """-w_i q_i^c log p_i^c for every branch and class: (B, M, K), the terms l^c sums over the branches."""
    log_p = ops.stack(list(log_probs), axis=1)  # (B, M, K)
    num_branches = log_p.shape[1]
    if num_branches > 1 and beta != 0:
        log_rest = ops.log(ops.maximum(1.0 - ops.exp(log_p), EPSILON))
        log_q = (beta / (num_branches - 1)) * (ops.sum(log_rest, axis=1, keepdims=True) - log_rest)
        q = ops.stop_gradient(ops.exp(log_q))
    else:
        q = ops.ones_like(log_p)
    weights = (ops.ones((num_branches,)) if branch_weights is None
               else ops.convert_to_tensor(branch_weights, log_p.dtype))
    if weights.shape[0] != num_branches:
        raise ValueError(f"{weights.shape[0]} branch weights for {num_branches} branches.")
    return -weights[None, :, None] * q * log_p


def multiplicative_predict(log_probs, beta, branch_weights=None):
    """Eq. 7: the class with the smallest class loss, (B,) int32."""
    return ops.cast(ops.argmin(class_losses(log_probs, beta, branch_weights), axis=-1), "int32")


@keras.saving.register_keras_serializable(package="multisensory")
class MultiplicativeLoss(keras.losses.Loss):
    """The multiplicative loss (eq. 9), or its boosted form (eq. 10).

    Called as `loss(y_true, log_probs)` with integer labels (B,) and `log_probs` a list of M tensors (B, K) of
    per-branch log-probabilities; returns the batch mean (scaled for `tf.distribute` like every Keras `Loss`).

    Args:
        beta: float. Exponent of the down-weighting factor; 0 gives the summed cross-entropies.
        boosted: bool. Keep only the examples not yet classified with a margin (eq. 10).
        margin: float. The margin delta of the boosted loss.
        branch_weights: list of float. Weight of each branch's term (default 1 each).
    """

    def __init__(self, beta=1.0, boosted=False, margin=0.0, branch_weights=None, name="multiplicative", **kwargs):
        super().__init__(name=name, **kwargs)
        self.beta, self.boosted, self.margin = float(beta), bool(boosted), float(margin)
        self.branch_weights = None if branch_weights is None else [float(w) for w in branch_weights]

    def call(self, y_true, y_pred):
        losses = class_losses(y_pred, self.beta, self.branch_weights)  # (B, K)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        true_class = ops.one_hot(labels, losses.shape[-1], dtype=losses.dtype)
        true_loss = ops.sum(losses * true_class, axis=-1)
        if not self.boosted:
            return true_loss
        best_other = ops.min(losses + true_class * 1e9, axis=-1)
        return true_loss * ops.cast(true_loss + self.margin > best_other, losses.dtype)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "boosted": self.boosted, "margin": self.margin,
                "branch_weights": self.branch_weights}
