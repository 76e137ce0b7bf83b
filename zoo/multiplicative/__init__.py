"""The multiplicative family of Liu et al. (2018) as presets of the multiplicative head: Mul, MulMix, HIGGS MLPs
and CIFAR ResNets."""

from ..multiplicative_head import MultiplicativeConfig, MultiplicativeHead, mixtures
from .higgs_mlp import higgs_mlp
from .presets import mul, multiplicative_fusion, mulmix
from .resnet_cifar import ResidualBlock, ResNetCIFAR, ResNetStages, resnet_cifar

__all__ = ["MultiplicativeConfig", "MultiplicativeHead", "mixtures", "mul", "mulmix", "multiplicative_fusion",
           "higgs_mlp", "resnet_cifar", "ResNetCIFAR", "ResNetStages", "ResidualBlock"]
