"""Models trained with the multiplicative combination (Liu, Li, Xu & Natarajan 2018, arXiv 1805.11730).

`MultiplicativeModel` is the base: a subclass supplies branch embeddings (`branches`), the model predicts per
branch or per mixture with a `MultiplicativeHead`, minimises `MultiplicativeLoss` (eq. 9, or eq. 10 when
boosted) and predicts by eq. 7. Its prediction is the negated class loss, -l^c (batch, K): its arg-max is eq. 7's
class and its softmax the class probabilities that `predict` users and the serving signature's `probabilities`
get. `forward` adds `"branch_log_probabilities"`, the list of per-branch (or per-mixture) log-probabilities; Z is -l^c.

`MultiplicativeFusion` (`mul`, `mulmix`) takes any classification dataset: one encoder per modality, chosen by
its kind, gives the branches.
"""

import keras

from multisensory.training.losses import MultiplicativeLoss, class_losses

from ..encoders import encoder_for
from ..fusion_model import FusionModel
from ..registry import register_model
from .head import MultiplicativeHead


class MultiplicativeModel(FusionModel):
    """Base of the multiplicative models; subclasses implement `branches(inputs, training)`.

    Args:
        modalities: list of `Modality` (or configs).
        task: `Task` (or config); classification only.
        num_branches: int. M, the number of embeddings `branches` returns.
        mix: bool. MulMix (predict from every mixture of branches) instead of Mul.
        beta: float. Exponent of the down-weighting factor (eq. 8).
        boosted: bool. Train with the boosted loss (eq. 10).
        margin: float. Its margin delta.
        branch_weights: list of float. Weight of each branch's (or mixture's) loss term.
        head_hidden: tuple of int. Hidden sizes of each predictor.
        dropout: float. Dropout in the predictors.
    """

    def __init__(self, modalities, task, num_branches, mix=False, beta=0.5, boosted=False, margin=0.0,
                 branch_weights=None, head_hidden=(), dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        if self.task.type != "classification":
            raise ValueError("The multiplicative combination needs a classification task.")
        self.mix, self.beta, self.boosted, self.margin = mix, float(beta), bool(boosted), float(margin)
        self.branch_weights = None if branch_weights is None else [float(w) for w in branch_weights]
        self.head_hidden, self.dropout = tuple(head_hidden), dropout
        self.head = MultiplicativeHead(self.task.num_classes, num_branches, mix, self.head_hidden, dropout,
                                       name="multiplicative_head")
        if self.branch_weights is not None and len(self.branch_weights) != len(self.head.subsets):
            raise ValueError(f"{len(self.branch_weights)} branch weights for {len(self.head.subsets)} "
                             f"{'mixtures' if mix else 'branches'}.")
        self.objective = MultiplicativeLoss(self.beta, self.boosted, self.margin, self.branch_weights)

    def branches(self, inputs, training=None):
        """Returns ({name: Z_m}, [branch embedding, ...])."""
        raise NotImplementedError(f"{type(self).__name__} must implement branches().")

    def forward(self, inputs, training=None):
        unimodal, embeddings = self.branches(inputs, training=training)
        log_probs = self.head(embeddings, training=training)
        scores = -class_losses(log_probs, self.beta, self.branch_weights)
        return {"prediction": scores, "unimodal": unimodal, "fused": scores, "branch_log_probabilities": log_probs}

    def loss_terms(self, x, y, outputs, sample_weight=None, training=True):
        return {"multiplicative": self.objective(y, outputs["branch_log_probabilities"], sample_weight)}

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """As `FusionModel.compile`; the loss is the model's own multiplicative loss (set by beta, boosted, ...)."""
        if loss not in ("auto", None):
            raise ValueError("A multiplicative model minimises its own loss (configure beta, boosted, margin and "
                             "branch_weights); compile it without `loss`.")
        super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

    def get_config(self):
        return {**super().get_config(), "mix": self.mix, "beta": self.beta, "boosted": self.boosted,
                "margin": self.margin, "branch_weights": self.branch_weights, "head_hidden": list(self.head_hidden),
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="multisensory")
class MultiplicativeFusion(MultiplicativeModel):
    """One encoder per modality (by kind) as the branches of Mul or MulMix.

    Args:
        modalities, task, mix, beta, boosted, margin, branch_weights, head_hidden, dropout: as `MultiplicativeModel`.
        width: int. Embedding size of each encoder (one size, so that MulMix can add them).

    Example:
    ```python
    from multisensory import zoo
    model = zoo.create("mulmix", "av_mnist", beta=0.5)
    model.compile()
    ```

    Reference: Liu, Li, Xu & Natarajan, Learn to Combine Modalities in Multimodal Deep Learning, arXiv:1805.11730.
    """

    def __init__(self, modalities, task, width=64, mix=False, beta=0.5, boosted=False, margin=0.0,
                 branch_weights=None, head_hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(modalities, task, len(modalities), mix, beta, boosted, margin, branch_weights, head_hidden,
                         dropout, **kwargs)
        self.width = width
        self.encoders = {m.name: encoder_for(m, width, dropout) for m in self.modalities}

    def branches(self, inputs, training=None):
        unimodal = {m: self.encoders[m](inputs[m], training=training) for m in self.modality_names}
        return unimodal, list(unimodal.values())

    def get_config(self):
        return {**super().get_config(), "width": self.width}


@register_model("mul", tasks=("classification",))
def mul(modalities, task, width=64, beta=0.5, boosted=False, margin=0.0, branch_weights=None, head_hidden=(64,),
        dropout=0.0, **kwargs):
    """Mul: a predictor per modality, combined multiplicatively (`MultiplicativeFusion` with `mix=False`)."""
    return MultiplicativeFusion(modalities, task, width, False, beta, boosted, margin, branch_weights, head_hidden,
                                dropout, **kwargs)


@register_model("mulmix", tasks=("classification",))
def mulmix(modalities, task, width=64, beta=0.5, boosted=False, margin=0.0, branch_weights=None, head_hidden=(64,),
           dropout=0.0, **kwargs):
    """MulMix: a predictor per mixture of modalities, combined multiplicatively (`mix=True`)."""
    return MultiplicativeFusion(modalities, task, width, True, beta, boosted, margin, branch_weights, head_hidden,
                                dropout, **kwargs)
