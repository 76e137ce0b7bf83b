"""Training: metrics, the training and evaluation runs behind the `multisensory` command.

Submodules import on first use (`multisensory.training.metrics`, `.runs`, ...): the command line answers `--help`
without loading TensorFlow.
"""

import importlib

__all__ = ["metrics", "task_metrics"]


def __getattr__(name):
    if name == "metrics":
        return importlib.import_module(".metrics", __name__)
    if name == "task_metrics":
        return importlib.import_module(".metrics", __name__).task_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
