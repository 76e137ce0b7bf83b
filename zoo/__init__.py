"""Zoo models of multimodal fusion: `create(name, dataset_info, **config)` (or `pretrained=<preset>`),
`load_pretrained(preset)`, `list_models(pattern)`."""

from . import baselines, clstm, mmlatch, multiplicative, sentiment  # noqa: F401  (registers the models)
from . import precision  # noqa: F401
from .baselines import AdditiveFusion, EarlyFusion, LateFusion, Unimodal
from .clstm import CLSTMAV, ConvLSTMFusion
from .encoders import ImageEncoder, MLPHead, TemporalEncoder, VectorEncoder, encoder_for
from .fusion_model import FusionModel, check_finite, check_inputs
from .mmlatch import MMLatch, MulT
from .multiplicative import ResNetCIFAR
from .multiplicative_head import MultiplicativeConfig, MultiplicativeHead
from .registry import config_keys, create, list_models, load_pretrained, register_model, sample_config
from .sentiment import EFLSTM, LMF, MFN, TFN

__all__ = ["create", "load_pretrained", "list_models", "register_model", "config_keys", "sample_config", "FusionModel",
           "check_inputs", "check_finite",
           "EarlyFusion", "LateFusion", "AdditiveFusion", "Unimodal", "MultiplicativeConfig", "MultiplicativeHead",
           "ResNetCIFAR", "CLSTMAV", "ConvLSTMFusion", "EFLSTM", "TFN", "LMF", "MFN",
           "MMLatch", "MulT", "ImageEncoder", "TemporalEncoder", "VectorEncoder", "MLPHead", "encoder_for"]
