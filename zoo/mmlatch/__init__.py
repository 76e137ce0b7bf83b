"""MMLatch top-down feedback (Paraskevopoulos et al. 2022), its cross-modal attention baseline, and MulT."""

from .attention import CrossModalAttention, SelfAttention, SymmetricAttention
from .latch_core import LatchCore, UnimodalEncoder
from .mmlatch import MMLatch
from .mult import MulT
from .mult_core import MulTCore, TransformerLayer, TransformerStack

__all__ = ["MMLatch", "MulT", "LatchCore", "MulTCore", "UnimodalEncoder", "SelfAttention", "CrossModalAttention",
           "SymmetricAttention", "TransformerLayer", "TransformerStack"]
