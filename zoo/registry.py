"""The model registry: `create(name, dataset_info, **config)` and `list_models(pattern)`."""

import fnmatch
import inspect

_REGISTRY = {}


def register_model(name):
    """Class decorator registering a `FusionModel` subclass under `name`."""

    def decorator(cls):
        _REGISTRY[name] = cls
        return cls

    return decorator


def list_models(pattern="*"):
    """Registered model names matching a shell-style wildcard pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_class(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model '{name}'. Available models: {', '.join(list_models())}.")
    return _REGISTRY[name]


def config_keys(name):
    """The configuration keys a model accepts besides `modalities` and `task`."""
    params = inspect.signature(model_class(name).__init__).parameters
    return [p for p in params if p not in ("self", "modalities", "task", "kwargs")]


def create(name, dataset_info, **config):
    """Builds a zoo model for a dataset.

    Args:
        name: str. A registered model (`list_models()`).
        dataset_info: `DatasetInfo`, or the name of a registered dataset.
        **config: the model's configuration; unknown keys raise `ValueError` listing the accepted ones.

    Returns:
        The model, built (its weights exist).
    """
    from multisensory import datasets

    cls = model_class(name)
    if isinstance(dataset_info, str):
        dataset_info = datasets.info(dataset_info)
    unknown = sorted(set(config) - set(config_keys(name)) - {"name"})
    if unknown:
        raise ValueError(f"Model '{name}' has no configuration key(s) {unknown}; accepted: {config_keys(name)}.")
    model = cls(modalities=dataset_info.modalities, task=dataset_info.task, **config)
    model.build()
    return model
