"""Early fusion in a convolutional LSTM (Barnum, Talukder & Yue 2020): the C-LSTM layer and `clstm_av`."""

from .clstm_av import CLSTMAV
from .conv_lstm_fusion import ConvLSTMFusion, per_step_reference

__all__ = ["CLSTMAV", "ConvLSTMFusion", "per_step_reference"]
