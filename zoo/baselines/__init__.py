"""Baselines: early, late and additive fusion."""

from .additive_fusion import AdditiveFusion
from .early_fusion import EarlyFusion
from .late_fusion import LateFusion

__all__ = ["AdditiveFusion", "EarlyFusion", "LateFusion"]
