"""Training: metrics, the training and evaluation runs behind the `multisensory` command."""

from . import metrics
from .metrics import task_metrics

__all__ = ["metrics", "task_metrics"]
