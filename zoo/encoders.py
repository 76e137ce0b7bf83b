"""Unimodal encoders, chosen by a modality's kind, and the MLP head shared by the baselines.

| kind                          | encoder            |
|-------------------------------|--------------------|
| image (H, W, C)               | `ImageEncoder`: two 3x3 conv + 2x2 max-pool blocks, flatten, dense |
| spectrogram / sequence / text | `TemporalEncoder`: two 1-D conv blocks over time, global max-pool, dense |
| vector (D,)                   | `VectorEncoder`: two dense layers |

Every encoder maps a batch of one modality to an embedding (batch, width): the Z_m of the model contract.
"""

import keras

_SERIALIZABLE = keras.saving.register_keras_serializable(package="multisensory")


class _Stack(keras.layers.Layer):
    """Runs `self.stack` in order, passing `training` to the layers that take it."""

    def call(self, x, training=None):
        for layer in self.stack:
            x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
        return x


class _ConvEncoder(_Stack):
    """Keeps the arguments shared by the convolutional encoders."""

    def __init__(self, width, filters, dropout, **kwargs):
        super().__init__(**kwargs)
        self.width, self.filters, self.dropout = width, tuple(filters), dropout

    def get_config(self):
        return {**super().get_config(), "width": self.width, "filters": list(self.filters), "dropout": self.dropout}


@_SERIALIZABLE
class ImageEncoder(_ConvEncoder):
    """Convolutional encoder of images (batch, H, W, C) -> (batch, width).

    Args:
        width: int. Embedding size.
        filters: tuple of int. Filters of the conv blocks, each 3x3 conv + ReLU + 2x2 max-pool.
        dropout: float. Dropout before the output layer.
    """

    def __init__(self, width=64, filters=(16, 32), dropout=0.0, **kwargs):
        super().__init__(width, filters, dropout, **kwargs)
        self.stack = []
        for f in self.filters:
            self.stack += [keras.layers.Conv2D(f, 3, padding="same", activation="relu"),
                           keras.layers.MaxPooling2D(2, padding="same")]
        self.stack += [keras.layers.Flatten(), keras.layers.Dropout(dropout),
                       keras.layers.Dense(width, activation="relu")]


@_SERIALIZABLE
class TemporalEncoder(_ConvEncoder):
    """Convolutional encoder over time of (batch, time, features) -> (batch, width).

    Args:
        width: int. Embedding size.
        filters: tuple of int. Filters of the conv blocks: a 1-D conv (kernel 5 then 3) + ReLU, max-pool by 2
            between blocks; a global max-pool over time ends the stack.
        dropout: float. Dropout before the output layer.
    """

    def __init__(self, width=64, filters=(32, 64), dropout=0.0, **kwargs):
        super().__init__(width, filters, dropout, **kwargs)
        self.stack = []
        for i, f in enumerate(self.filters):
            if i:
                self.stack.append(keras.layers.MaxPooling1D(2, padding="same"))
            self.stack.append(keras.layers.Conv1D(f, 5 if i == 0 else 3, padding="same", activation="relu"))
        self.stack += [keras.layers.GlobalMaxPooling1D(), keras.layers.Dropout(dropout),
                       keras.layers.Dense(width, activation="relu")]


@_SERIALIZABLE
class VectorEncoder(_Stack):
    """Two-layer MLP encoder of feature vectors (batch, D) -> (batch, width).

    Args:
        width: int. Size of both layers (the embedding size).
        dropout: float. Dropout between the layers.
    """

    def __init__(self, width=64, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.dropout = width, dropout
        self.stack = [keras.layers.Dense(width, activation="relu"), keras.layers.Dropout(dropout),
                      keras.layers.Dense(width, activation="relu")]

    def get_config(self):
        return {**super().get_config(), "width": self.width, "dropout": self.dropout}


@_SERIALIZABLE
class MLPHead(_Stack):
    """Hidden ReLU layers with dropout, then a linear output layer (batch, D) -> (batch, units).

    Args:
        units: int. Output size (classes K, or 1 for regression).
        hidden: tuple of int. Sizes of the hidden layers.
        dropout: float. Dropout after each hidden layer.
    """

    def __init__(self, units, hidden=(64,), dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.hidden, self.dropout = units, tuple(hidden), dropout
        self.stack = []
        for h in self.hidden:
            self.stack += [keras.layers.Dense(h, activation="relu"), keras.layers.Dropout(dropout)]
        self.stack.append(keras.layers.Dense(units))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": list(self.hidden), "dropout": self.dropout}


_BY_KIND = {"image": ImageEncoder, "spectrogram": TemporalEncoder, "sequence": TemporalEncoder,
            "text": TemporalEncoder, "vector": VectorEncoder}


def encoder_for(modality, width, dropout=0.0):
    """The encoder of a `Modality`, by its kind, named `<modality>_encoder`."""
    return _BY_KIND[modality.kind](width=width, dropout=dropout, name=f"{modality.name}_encoder")
