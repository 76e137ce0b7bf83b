"""The multiplicative head: a stage any `FusionModel` can swap in (Liu, Li, Xu & Natarajan 2018, arXiv 1805.11730,
section 3).

`head="mul"` (or `"mulmix"`, or a `MultiplicativeConfig`) replaces a model's plain head. The branches are the model's
unimodal representations Z_1..Z_M and, unless `fused_branch=False`, its fused Z as one more branch, so that a
learned fusion (TFN's tensor, MFN's memory, MMLatch's fusion LSTM) keeps learning: Liu et al. combine per-modality
predictors; adding the fused representation as a predictor of its own is this zoo's choice for models that have
one. The presets `mul`, `mulmix`, `higgs_mlp` and `resnet_cifar` use the modalities (or ResNet stages) alone.

- `Mul`: one predictor per branch, log p_i = log_softmax(g_i(v_i)).
- `MulMix` (eqs. 11-13): every non-empty mixture c of the branches gives u_c = sum_{k in c} f(v_k) and its own
  predictor g_c, 2^B - 1 predictors for B branches, in the order of `mixtures(B)`. f is a learned ReLU projection
  to `width` (eq. 11's f), or, with `width=None`, the identity (the branches must then have one size).

The model's prediction is the negated class loss -l^c (eq. 7's arg-max, its softmax the probabilities), and it
minimises the multiplicative loss (eq. 9, or eq. 10 when boosted) of `multisensory.training.losses`. The head is for
classification: a regression dataset has no classes to combine (`mosi`/`mosei` have a binary view, the dataset
option `binary=`).
"""

import inspect
import itertools

import keras
from keras import ops

from .encoders import MLPHead

KINDS = ("plain", "mul", "mulmix")


def mixtures(num_branches):
    """All non-empty subsets of range(num_branches), by size, then in lexicographic order."""
    return [c for size in range(1, num_branches + 1) for c in itertools.combinations(range(num_branches), size)]


class MultiplicativeConfig:
    """Settings of the multiplicative head.

    Args:
        mix: bool. MulMix (a predictor per mixture of branches) instead of Mul.
        beta: float. Exponent of the down-weighting factor (eq. 8); 0 gives the summed cross-entropies.
        boosted: bool. Train with the boosted loss (eq. 10).
        margin: float. Its margin delta.
        branch_weights: list of float or None. Weight of each branch's (or mixture's) loss term.
        hidden: tuple of int. Hidden sizes of each predictor g.
        width: int or None. Size of MulMix's projections f (None: no projection).
        dropout: float. Dropout in the predictors.
        fused_branch: bool. The fused Z is a branch besides Z_1..Z_M.
    """

    def __init__(self, mix=False, beta=0.5, boosted=False, margin=0.0, branch_weights=None, hidden=(64,), width=64,
                 dropout=0.0, fused_branch=True):
        self.mix, self.beta, self.boosted, self.margin = bool(mix), float(beta), bool(boosted), float(margin)
        self.branch_weights = None if branch_weights is None else [float(w) for w in branch_weights]
        self.hidden, self.width, self.dropout = tuple(hidden), width, float(dropout)
        self.fused_branch = bool(fused_branch)

    @classmethod
    def parse(cls, head):
        """A `MultiplicativeConfig` from `head`, or None for the plain head.

        `head` is None or "plain", "mul", "mulmix", a `MultiplicativeConfig`, or a dict of its arguments (with
        `"type": "mul" | "mulmix"` in place of `mix`).
        """
        if head is None or isinstance(head, cls):
            return head
        if isinstance(head, str):
            if head not in KINDS:
                raise ValueError(f"Unknown head '{head}'; heads: {', '.join(KINDS)}.")
            return None if head == "plain" else cls(mix=head == "mulmix")
        if isinstance(head, dict):
            config = dict(head)
            kind = config.pop("type", None)
            if kind is not None:
                if kind not in KINDS[1:]:
                    raise ValueError(f"Unknown multiplicative head type '{kind}'; types: mul, mulmix.")
                config["mix"] = kind == "mulmix"
            accepted = ["type"] + list(inspect.signature(cls).parameters)
            unknown = sorted(set(config) - set(accepted))
            if unknown:
                raise ValueError(f"The multiplicative head has no setting(s) {unknown}; accepted: {accepted}.")
            return cls(**config)
        raise TypeError(f"head must be one of {KINDS}, a dict or a MultiplicativeConfig; got {type(head).__name__}.")

    @property
    def kind(self):
        return "mulmix" if self.mix else "mul"

    def get_config(self):
        return {**vars(self), "hidden": list(self.hidden)}

    def __eq__(self, other):
        return isinstance(other, MultiplicativeConfig) and self.get_config() == other.get_config()

    def __repr__(self):
        return f"MultiplicativeConfig({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


@keras.saving.register_keras_serializable(package="multisensory")
class MultiplicativeHead(keras.layers.Layer):
    """Maps a list of branch embeddings to a list of class log-probabilities (log-softmax), one per branch or
    mixture (see the module docstring).

    Args:
        num_classes: int. K.
        num_branches: int. The number of branches B.
        mix: bool. Predict from every mixture (MulMix) instead of every branch (Mul).
        hidden: tuple of int. Hidden sizes of each predictor g.
        dropout: float. Dropout in the predictors.
        width: int or None. MulMix's projection size (None: the branches are added as they are).
    """

    def __init__(self, num_classes, num_branches, mix=False, hidden=(), dropout=0.0, width=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.num_branches, self.mix = num_classes, num_branches, mix
        self.hidden, self.dropout, self.width = tuple(hidden), dropout, width
        self.subsets = mixtures(num_branches) if mix else [(i,) for i in range(num_branches)]
        self.projections = ([keras.layers.Dense(width, activation="relu", name=f"f_{k + 1}")
                             for k in range(num_branches)] if mix and width else [])
        self.predictors = [MLPHead(num_classes, self.hidden, dropout, name=f"g_{'_'.join(map(str, c))}")
                           for c in self.subsets]

    def call(self, embeddings, training=None):
        if len(embeddings) != self.num_branches:
            raise ValueError(f"The multiplicative head has {self.num_branches} branches, got {len(embeddings)}.")
        if self.projections:
            embeddings = [f(v) for f, v in zip(self.projections, embeddings)]
        elif self.mix and len({int(v.shape[-1]) for v in embeddings}) > 1:
            raise ValueError(f"MulMix adds branch embeddings, which here have sizes "
                             f"{[int(v.shape[-1]) for v in embeddings]}: give the head a projection `width`.")
        log_probs = []
        for subset, predictor in zip(self.subsets, self.predictors):
            u = embeddings[subset[0]]
            for k in subset[1:]:
                u = u + embeddings[k]
            # float32 under mixed precision: the class losses multiply and exponentiate these
            log_probs.append(ops.log_softmax(ops.cast(predictor(u, training=training), "float32"), axis=-1))
        return log_probs

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "num_branches": self.num_branches,
                "mix": self.mix, "hidden": list(self.hidden), "dropout": self.dropout, "width": self.width}
