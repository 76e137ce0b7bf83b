"""Per-branch predictors of the multiplicative models (Liu et al. 2018, arXiv 1805.11730, section 3).

`Mul`: one predictor per branch, p_i = softmax(g_i(v_i)). `MulMix` (eqs. 11-13): from M branch embeddings f(v_k)
of one size, every non-empty mixture c of the branches gives u_c = sum_{k in c} f(v_k) and its own predictor g_c,
2^M - 1 predictors in all, in the order of `mixtures(M)`.
"""

import itertools

import keras
from keras import ops

from ..encoders import MLPHead


def mixtures(num_branches):
    """All non-empty subsets of range(num_branches), by size, then in lexicographic order."""
    return [c for size in range(1, num_branches + 1) for c in itertools.combinations(range(num_branches), size)]


@keras.saving.register_keras_serializable(package="multisensory")
class MultiplicativeHead(keras.layers.Layer):
    """Maps a list of M branch embeddings to a list of class log-probabilities (log-softmax), one per branch or
    mixture.

    Args:
        num_classes: int. K.
        num_branches: int. M.
        mix: bool. Predict from every mixture (MulMix) instead of every branch (Mul).
        hidden: tuple of int. Hidden sizes of each predictor g.
        dropout: float. Dropout in the predictors.
    """

    def __init__(self, num_classes, num_branches, mix=False, hidden=(), dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.num_branches, self.mix = num_classes, num_branches, mix
        self.hidden, self.dropout = tuple(hidden), dropout
        self.subsets = mixtures(num_branches) if mix else [(i,) for i in range(num_branches)]
        self.predictors = [MLPHead(num_classes, self.hidden, dropout, name=f"g_{'_'.join(map(str, c))}")
                           for c in self.subsets]

    def call(self, embeddings, training=None):
        log_probs = []
        for subset, predictor in zip(self.subsets, self.predictors):
            u = embeddings[subset[0]]
            for k in subset[1:]:
                u = u + embeddings[k]
            log_probs.append(ops.log_softmax(predictor(u, training=training), axis=-1))
        return log_probs

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "num_branches": self.num_branches,
                "mix": self.mix, "hidden": list(self.hidden), "dropout": self.dropout}
