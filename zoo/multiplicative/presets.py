"""`mul` and `mulmix`: Liu et al.'s Mul and MulMix (arXiv 1805.11730, section 3) as presets of the multiplicative head.

One encoder per modality (by its kind, all of size `width`) gives the branches; no fused branch, so each predictor
sees one modality (Mul) or one mixture of modalities (MulMix, the encoders' embeddings added as they are). The model
is `additive_fusion` with `combine="concat"` and the head `MultiplicativeConfig(fused_branch=False, ...)`
(`multisensory.zoo.multiplicative_head`): any other zoo model takes the same head with `head="mul"`.
"""

from ..baselines import AdditiveFusion
from ..multiplicative_head import MultiplicativeConfig
from ..registry import register_model
from ..search_space import MULTIPLICATIVE, choice

PRESET_SPACE = {**MULTIPLICATIVE, "width": choice(32, 64, 128)}


def multiplicative_fusion(modalities, task, mix, width=64, beta=0.5, boosted=False, margin=0.0, branch_weights=None,
                          head_hidden=(64,), dropout=0.0, **kwargs):
    """Per-modality encoders of size `width` under the multiplicative head (Mul, or MulMix with `mix`)."""
    head = MultiplicativeConfig(mix=mix, beta=beta, boosted=boosted, margin=margin, branch_weights=branch_weights,
                                hidden=head_hidden, width=None, dropout=dropout, fused_branch=False)
    return AdditiveFusion(modalities, task, width=width, hidden=(), combine="concat", dropout=dropout, head=head,
                          **kwargs)


@register_model("mul", tasks=("classification",), search_space=PRESET_SPACE)
def mul(modalities, task, width=64, beta=0.5, boosted=False, margin=0.0, branch_weights=None, head_hidden=(64,),
        dropout=0.0, **kwargs):
    """Mul: a predictor per modality, combined multiplicatively.

    Example:
    ```python
    from multisensory import zoo
    model = zoo.create("mul", "av_mnist", beta=0.5)
    model.compile()
    ```
    """
    return multiplicative_fusion(modalities, task, False, width, beta, boosted, margin, branch_weights, head_hidden,
                                 dropout, **kwargs)


@register_model("mulmix", tasks=("classification",), search_space=PRESET_SPACE)
def mulmix(modalities, task, width=64, beta=0.5, boosted=False, margin=0.0, branch_weights=None, head_hidden=(64,),
           dropout=0.0, **kwargs):
    """MulMix: a predictor per mixture of modalities, combined multiplicatively."""
    return multiplicative_fusion(modalities, task, True, width, beta, boosted, margin, branch_weights, head_hidden,
                                 dropout, **kwargs)
