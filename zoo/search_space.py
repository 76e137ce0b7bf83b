"""Search spaces of zoo models for KerasTuner: what `multisensory tune` samples.

A model registers its space beside its configuration, `register_model(name, search_space={key: spec})`, where a
spec draws one configuration value from KerasTuner's `HyperParameters` (`choice`, `float_range`, `boolean`); a
space that depends on the configuration (a preset's `variant`) is a function of the fixed configuration returning
such a dict.
`sample(name, hp, config)` composes the model's space with those of the stages its configuration turns on, and
leaves out every key the configuration fixes:

- every model: `learning_rate` in the synergy paper's grid {1e-2, 5e-3, 1e-3, 5e-4, 1e-4} (Shankar 2021, appendix C);
- `synergy=`: its beta and gammas (`synergy.*`) and the batch size {32, 64} of the same grid;
- `head="mul" | "mulmix"` (and the `mul`/`mulmix` presets): beta in [0, 1], the boosted loss and its margin delta
  (Liu et al. 2018, section 3; their grid for beta is [0, 1]).
"""

RATES = (1e-2, 5e-3, 1e-3, 5e-4, 1e-4)


def choice(*values):
    """A spec: one of `values`."""
    return lambda hp, key: hp.Choice(key, list(values))


def float_range(low, high, step):
    """A spec: a float from `low` to `high` by `step`."""
    return lambda hp, key: hp.Float(key, low, high, step=step)


def boolean():
    """A spec: True or False."""
    return lambda hp, key: hp.Boolean(key)


TRAINING = {"learning_rate": choice(*RATES)}
SYNERGY = {"beta": choice(0.01, 0.1, 1.0), "gamma_l2": choice(0.1, 1.0), "gamma_d": choice(0.1, 1.0),
           "gamma_kappa": choice(1e-5, 1e-4, 1e-3)}
SYNERGY_TRAINING = {"batch_size": choice(32, 64)}
MULTIPLICATIVE = {"beta": float_range(0.0, 1.0, 0.1), "boosted": boolean(), "margin": choice(0.0, 0.1, 0.5)}


def by_variant(default, spaces):
    """A space chosen by the configuration's `variant` (`default` when it is not fixed): {variant: space}."""
    return lambda config: spaces.get(config.get("variant", default), {})


def _draw(space, hp, fixed, prefix=""):
    return {key: spec(hp, prefix + key) for key, spec in space.items() if key not in fixed}


def sample(space, hp, config):
    """(model configuration, training settings) drawn from `space` (the model's) and the composed stages' spaces.

    Args:
        space: dict {key: spec}, the model's own search space, or a function of `config` returning one.
        hp: `keras_tuner.HyperParameters`.
        config: dict. The fixed configuration; its keys are not searched, its `synergy` and `head` turn on their
            spaces.
    """
    from .multiplicative_head import MultiplicativeConfig

    config = dict(config)
    space = space(config) if callable(space) else space
    drawn = {**config, **_draw(space, hp, config)}
    training = _draw(TRAINING, hp, {})
    if config.get("synergy") is not None:
        synergy = dict(config["synergy"] if isinstance(config["synergy"], dict) else config["synergy"].get_config())
        drawn["synergy"] = {**synergy, **_draw(SYNERGY, hp, {}, "synergy.")}
        training.update(_draw(SYNERGY_TRAINING, hp, {}))
    head = MultiplicativeConfig.parse(config.get("head"))
    if head is not None:
        drawn["head"] = {**head.get_config(), **_draw(MULTIPLICATIVE, hp, {}, "head.")}
    return drawn, training
