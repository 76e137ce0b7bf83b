"""The multiplicative family of Liu et al. (2018): Mul, MulMix, boosted training; HIGGS MLPs and CIFAR ResNets."""

from .head import MultiplicativeHead, mixtures
from .higgs_mlp import higgs_mlp
from .multiplicative_model import MultiplicativeFusion, MultiplicativeModel, mul, mulmix
from .resnet_cifar import MultiplicativeResNetCIFAR, ResidualBlock, ResNetCIFAR, ResNetStages, resnet_cifar

__all__ = ["MultiplicativeHead", "mixtures", "MultiplicativeModel", "MultiplicativeFusion", "mul", "mulmix",
           "higgs_mlp", "resnet_cifar", "ResNetCIFAR", "MultiplicativeResNetCIFAR", "ResNetStages", "ResidualBlock"]
