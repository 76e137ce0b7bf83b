"""`clstm_av`: Barnum, Talukder & Yue's fusion-depth models on AV-MNIST ("On the Benefits of Early Fusion in
Multimodal Representation Learning", arXiv 2011.07191, Appendix A.2).

| fusion | model |
|---|---|
| `initial` | C-LSTM(64, 3x3) fed the image and every audio frame -> 2x2 max-pool (per timestep) -> C-LSTM(64, 3x3) -> 2x2 max-pool -> Dense 128 ReLU -> Dense 10 |
| `second` | image Conv(64, 3x3, ReLU) and audio LSTM(64) feeding a C-LSTM(64, 3x3) -> 2x2 max-pool -> Dense 128 ReLU -> Dense 10 |
| `fc` | image Conv(64) -> Conv(64) (3x3, ReLU), audio LSTM(64) -> LSTM(64); flattened image and last audio step concatenated -> Dense 128 ReLU -> Dense 10 |

The paper lists no pooling inside the `second` and `fc` image streams; none is added.
In the model contract: Z_image and Z_audio are the inputs (`initial`) or the unimodal streams' outputs (`second`:
the image convolution, the audio LSTM's last step; `fc`: both streams' outputs), and Z is the flattened input of
the Dense 128 layer.

`only="image"` / `only="audio"` zero the other input inside the model (the paper's unimodal variants).
`max_frames` keeps the last `max_frames` spectrogram frames: the audio is front-padded to the longest recording
(90 frames, the paper's setting) while the median recording has 15, so e.g. `max_frames=30` cuts the cost of the
C-LSTM by 3x and drops audio only from the 5% longest recordings. `None` keeps every frame (paper-exact).
"""

import keras
from keras import layers, ops

from .. import recurrent
from ..fusion_model import FusionModel
from ..registry import register_model
from ..search_space import choice
from .conv_lstm_fusion import ConvLSTMFusion

FUSIONS = ("initial", "second", "fc")


@register_model("clstm_av", tasks=("classification",), search_space={"filters": choice(16, 32, 64)})
@keras.saving.register_keras_serializable(package="multisensory")
class CLSTMAV(FusionModel):
    """Image + audio-spectrogram classifier fusing at the depth `fusion` (see the module docstring).

    Args:
        modalities: an image modality (H, W, C) and a spectrogram modality (T, D), e.g. `datasets.info("av_mnist")`.
        task: classification `Task`.
        fusion: str. `"initial"`, `"second"` or `"fc"`.
        filters: int. Channels of the convolutions, C-LSTMs and LSTMs (64 in the paper).
        hidden: int. Units of the Dense ReLU layer (128 in the paper).
        max_frames: int. Keep the last `max_frames` frames of the audio; `None` keeps all.
        only: str. `"image"` or `"audio"` to zero the other input (unimodal variants); `None` uses both.

    Example:
    ```python
    from multisensory import zoo
    model = zoo.create("clstm_av", "av_mnist", fusion="initial", max_frames=30)
    ```

    Reference: Barnum, Talukder & Yue, arXiv:2011.07191.
    """

    def __init__(self, modalities, task, fusion="initial", filters=64, hidden=128, max_frames=None, only=None,
                 **kwargs):
        super().__init__(modalities, task, **kwargs)
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got '{fusion}'.")
        kinds = {m.kind: m.name for m in self.modalities}
        if len(self.modalities) != 2 or "image" not in kinds or "spectrogram" not in kinds:
            raise ValueError("clstm_av takes one image and one spectrogram modality, e.g. av_mnist's.")
        self.image, self.audio = kinds["image"], kinds["spectrogram"]
        if only not in (None, self.image, self.audio):
            raise ValueError(f"only must be None, '{self.image}' or '{self.audio}', got '{only}'.")
        self.fusion, self.filters, self.hidden, self.max_frames, self.only = fusion, filters, hidden, max_frames, only
        conv = dict(padding="same", activation="relu")
        if fusion == "initial":
            self.clstm1 = ConvLSTMFusion(filters, return_sequences=True, name="clstm1")
            self.clstm2 = ConvLSTMFusion(filters, name="clstm2")
        elif fusion == "second":
            self.image_conv = layers.Conv2D(filters, 3, **conv, name="image_conv")
            self.audio_lstm = recurrent.LSTM(filters, return_sequences=True, name="audio_lstm")
            self.clstm = ConvLSTMFusion(filters, name="clstm")
        else:
            self.image_convs = [layers.Conv2D(filters, 3, **conv, name=f"image_conv{i + 1}") for i in range(2)]
            self.audio_lstms = [recurrent.LSTM(filters, return_sequences=not i, name=f"audio_lstm{i + 1}")
                                for i in range(2)]
        self.pool = layers.MaxPooling2D(2)
        self.flatten = layers.Flatten()
        if self.plain_head:
            self.dense = layers.Dense(hidden, activation="relu", name="dense")
            self.out = layers.Dense(self.task.num_classes, name="logits")

    def _pool_sequence(self, x):
        """2x2 max-pool of every timestep of (B, T, H, W, C)."""
        steps = x.shape[1]
        pooled = self.pool(ops.reshape(x, (-1,) + tuple(x.shape[2:])))
        return ops.reshape(pooled, (-1, steps) + tuple(pooled.shape[1:]))

    def forward(self, inputs, training=None):
        image, audio = inputs[self.image], inputs[self.audio]
        if self.max_frames:
            audio = audio[:, -self.max_frames:]
        if self.only == self.image:
            audio = ops.zeros_like(audio)
        elif self.only == self.audio:
            image = ops.zeros_like(image)
        if self.fusion == "initial":
            unimodal = {self.image: self.flatten(image), self.audio: self.flatten(audio)}
            fused = self.pool(self.clstm2(self._pool_sequence(self.clstm1(image, audio))))
        elif self.fusion == "second":
            image_features, audio_features = self.image_conv(image), self.audio_lstm(audio)
            unimodal = {self.image: self.flatten(image_features), self.audio: audio_features[:, -1]}
            fused = self.pool(self.clstm(image_features, audio_features))
        else:
            for conv, lstm in zip(self.image_convs, self.audio_lstms):
                image, audio = conv(image), lstm(audio)
            unimodal = {self.image: self.flatten(image), self.audio: audio}
            fused = ops.concatenate([unimodal[self.image], audio], axis=-1)
        outputs = {"unimodal": unimodal, "fused": self.flatten(fused)}
        if self.plain_head:
            outputs["prediction"] = self.out(self.dense(outputs["fused"]))
        return outputs

    def get_config(self):
        return {**super().get_config(), "fusion": self.fusion, "filters": self.filters, "hidden": self.hidden,
                "max_frames": self.max_frames, "only": self.only}
