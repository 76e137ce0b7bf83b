"""Baselines: early, late and additive fusion, and a single modality."""

from .additive_fusion import AdditiveFusion
from .early_fusion import EarlyFusion
from .late_fusion import LateFusion
from .unimodal import Unimodal

__all__ = ["AdditiveFusion", "EarlyFusion", "LateFusion", "Unimodal"]
