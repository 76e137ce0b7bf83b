"""The model registry: `create(name, dataset_info, **config)` and `list_models(pattern, task=None)`.

A registered builder is a `FusionModel` subclass or a function with the same signature
`(modalities, task, **config)` returning a model (e.g. one picking a class by `variant=`).
"""

import fnmatch
import inspect

from .precision import policy

_REGISTRY = {}
TASK_TYPES = ("classification", "regression")


def register_model(name, tasks=TASK_TYPES, search_space=None):
    """Decorator registering a model builder under `name`, for the task types it supports, with its KerasTuner
    search space ({config key: spec}, or a function of the fixed configuration returning one; see
    `multisensory.zoo.search_space`)."""

    def decorator(builder):
        _REGISTRY[name] = (builder, tuple(tasks), search_space or {})
        return builder

    return decorator


def list_models(pattern="*", task=None):
    """Registered model names matching a shell-style wildcard pattern (and supporting `task`, if given), sorted."""
    return sorted(n for n, (_, tasks, _) in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and (task is None or task in tasks))


def _lookup(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model '{name}'. Available models: {', '.join(list_models())}.")
    return _REGISTRY[name]


def config_keys(name):
    """The configuration keys a model accepts besides `modalities` and `task`.

    Every model takes `synergy` and `recipe` (the base `FusionModel`'s); class-registered models also take `head`,
    while the function-registered presets choose their head themselves (`variant=`, or `mul`/`mulmix`).
    """
    builder = _lookup(name)[0]
    params = inspect.signature(builder.__init__ if inspect.isclass(builder) else builder).parameters
    keys = [p for p in params if p not in ("self", "modalities", "task", "kwargs")]
    shared = ("synergy", "head", "recipe") if inspect.isclass(builder) else ("synergy", "recipe")
    return keys + [k for k in shared if k not in keys]


def sample_config(name, hp, config=None):
    """(configuration, training settings) of model `name` drawn from its search space and those of the stages its
    `config` turns on (`multisensory.zoo.search_space.sample`); keys `config` fixes are not searched."""
    from .search_space import sample

    return sample(_lookup(name)[2], hp, config or {})


def create(name, dataset_info=None, pretrained=None, root=None, precision=None, **config):
    """Builds a zoo model for a dataset, or loads a pretrained one.

    Args:
        name: str. A registered model (`list_models()`).
        dataset_info: `DatasetInfo`, or the name of a registered dataset; with `pretrained`, optional (when given,
            its modalities must be the preset's).
        pretrained: str. A preset of model `name` (`load_pretrained`): its weights, configuration and preprocessing.
        root: str. The preset root; default `$MULTISENSORY_ZOO`.
        precision: "float32", "mixed_float16" or "mixed_bfloat16" (`multisensory.zoo.precision`, checked against
            this machine's devices): the dtype policy its layers compute in; None: Keras' global policy.
        **config: the model's configuration; unknown keys raise `ValueError` listing the accepted ones.

    Returns:
        The model, built (its weights exist).
    """
    from multisensory import datasets

    builder, tasks, _ = _lookup(name)
    if isinstance(dataset_info, str):
        dataset_info = datasets.info(dataset_info)
    if pretrained is not None:
        return _pretrained(name, dataset_info, pretrained, root, config)
    if dataset_info is None:
        raise TypeError(f"create('{name}') needs a dataset_info (or a dataset name), or pretrained=<preset>.")
    if dataset_info.task.type not in tasks:
        raise ValueError(f"Model '{name}' supports {' and '.join(tasks)} tasks; dataset '{dataset_info.name}' is "
                         f"{dataset_info.task.type}. Models for it: {', '.join(list_models(task=dataset_info.task.type))}.")
    unknown = sorted(set(config) - set(config_keys(name)) - {"name"})
    if unknown:
        raise ValueError(f"Model '{name}' has no configuration key(s) {unknown}; accepted: {config_keys(name)}.")
    with policy(precision):
        model = builder(modalities=dataset_info.modalities, task=dataset_info.task, **config)
        model.build()
    model.zoo_name = name
    return model


def load_pretrained(preset, root=None, version=None):
    """A preset's model, checksums verified (`multisensory.exports.presets.load_pretrained`)."""
    from multisensory.exports.presets import load_pretrained as load

    return load(preset, root, version)


def _pretrained(name, dataset_info, preset, root, config):
    if config:
        raise ValueError(f"A preset fixes its model's configuration; got {sorted(config)} with pretrained='{preset}'.")
    model = load_pretrained(preset, root)
    if model.preset.get("model") != name:
        raise ValueError(f"Preset '{preset}' is a '{model.preset.get('model')}' model, not '{name}'.")
    if dataset_info is not None and [(m.name, m.shape) for m in dataset_info.modalities] != [
            (m.name, m.shape) for m in model.modalities]:
        raise ValueError(f"Preset '{preset}' takes {[(m.name, m.shape) for m in model.modalities]}; dataset "
                         f"'{dataset_info.name}' has {[(m.name, m.shape) for m in dataset_info.modalities]}.")
    return model
