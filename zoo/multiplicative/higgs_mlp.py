"""`higgs_mlp`: the feed-forward networks of Liu et al. (2018, section 6.1.2) on HIGGS, one per fusion variant.

Every modality network has two hidden layers of 300 ReLU units (`width`) and every predictor one more, so all
variants have three hidden layers between an input and a prediction:

| variant | model |
|---|---|
| `base` | `unimodal`: one modality (`modality=`, default the first) |
| `early` | `early_fusion`: the concatenated inputs through three layers of `width` |
| `add` | `additive_fusion`: per-modality networks, embeddings concatenated, one hidden layer, output |
| `mul` | `mul`: a predictor per modality, multiplicative loss and prediction |
| `mulmix` | `mulmix`: a predictor per mixture of modalities |

Nothing in it is specific to HIGGS beyond the defaults: it takes any vector dataset.
"""

from ..baselines import AdditiveFusion, EarlyFusion, Unimodal
from ..registry import register_model
from ..search_space import MULTIPLICATIVE, by_variant, float_range
from .presets import multiplicative_fusion

VARIANTS = ("base", "early", "add", "mul", "mulmix")


@register_model("higgs_mlp", tasks=("classification",), search_space=by_variant(
    "mul", {**{v: {"dropout": float_range(0.0, 0.5, 0.1)} for v in VARIANTS},
            **{v: {**MULTIPLICATIVE, "dropout": float_range(0.0, 0.5, 0.1)} for v in ("mul", "mulmix")}}))
def higgs_mlp(modalities, task, variant="mul", modality=None, width=300, beta=0.5, boosted=False, margin=0.0,
              dropout=0.0, recipe="liu_higgs", **kwargs):
    """Builds the `variant` network (see the module docstring); it trains with Liu et al.'s recipe
    (`multisensory.zoo.recipes`; `recipe=None`: Adam)."""
    kwargs["recipe"] = recipe
    if modality is not None and variant != "base":
        raise ValueError(f"`modality` chooses the input of the 'base' variant; variant '{variant}' uses them all.")
    if variant == "base":
        return Unimodal(modalities, task, modality=modality, width=width, hidden=(width,), dropout=dropout, **kwargs)
    if variant == "early":
        return EarlyFusion(modalities, task, hidden=(width,) * 3, dropout=dropout, **kwargs)
    if variant == "add":
        return AdditiveFusion(modalities, task, width=width, hidden=(width,), combine="concat", dropout=dropout,
                              **kwargs)
    if variant in ("mul", "mulmix"):
        return multiplicative_fusion(modalities, task, variant == "mulmix", width=width, beta=beta, boosted=boosted,
                                     margin=margin, head_hidden=(width,), dropout=dropout, **kwargs)
    raise ValueError(f"Unknown variant '{variant}'; higgs_mlp variants: {', '.join(VARIANTS)}.")
