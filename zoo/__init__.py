"""Zoo models of multimodal fusion: `create(name, dataset_info, **config)`, `list_models(pattern)`."""

from . import baselines  # noqa: F401  (registers the models)
from .baselines import AdditiveFusion, EarlyFusion, LateFusion
from .encoders import ImageEncoder, MLPHead, TemporalEncoder, VectorEncoder, encoder_for
from .fusion_model import FusionModel, check_inputs
from .registry import config_keys, create, list_models, register_model

__all__ = ["create", "list_models", "register_model", "config_keys", "FusionModel", "check_inputs",
           "EarlyFusion", "LateFusion", "AdditiveFusion", "ImageEncoder", "TemporalEncoder", "VectorEncoder",
           "MLPHead", "encoder_for"]
