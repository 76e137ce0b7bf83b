"""Sentiment baselines on aligned feature sequences: EF-LSTM, TFN, LMF, MFN."""

from .ef_lstm import EFLSTM
from .lmf import LMF
from .mfn import MFN
from .sequence_lstm import MaskedLSTM, padding_mask, subnetwork
from .tensor_fusion import LowRankFusion, TensorFusion
from .tfn import TFN

__all__ = ["EFLSTM", "TFN", "LMF", "MFN", "MaskedLSTM", "TensorFusion", "LowRankFusion", "padding_mask", "subnetwork"]
