"""`resnet_cifar`: He et al.'s CIFAR ResNets whose three stages are the "modalities" of Liu et al. (2018, section
6.1.1).

The network (He, Zhang, Ren & Sun 2016, section 4.2): a 3x3 convolution with 16 filters, then three stages of
n basic blocks each (16, 32 and 64 filters, the second and third starting with stride 2), depth = 6n + 2
(ResNet-32: n = 5; ResNet-110: n = 18). A block is conv-BN-ReLU-conv-BN plus the shortcut, then ReLU; where the
shape changes the shortcut is a strided 1x1 convolution with batch normalisation (He et al.'s option B; their
CIFAR models use zero-padding, option A, which has no weights: a documented difference). Each stage's output is
global-average-pooled into that stage's representation Z_1, Z_2, Z_3.

| variant | head |
|---|---|
| `base` | a linear classifier on the last stage |
| `add` | the three pooled stages concatenated, an MLP with one hidden layer of 256 |
| `mul` | a linear classifier per stage, multiplicative loss, branch weights 0.3, 0.3, 1.0 and beta 0.3 |
| `mulmix` | each pooled stage projected to `width`, an MLP (256 hidden) per mixture of stages (7), beta 0.3 |

`mul` and `mulmix` are the multiplicative head (`multisensory.zoo.multiplicative_head`) over the three stages, with
no fused branch. The beta default is the paper's CIFAR-100 optimum, 0.3 for both Mul and MulMix (the paper's
default beta is 0.5, the zoo's default elsewhere). MulMix's predictors have
the Add head's hidden layer of 256: "as in the additive approach, a neural network is used" (Liu et al.).

With `augment=True` (default) training images are flipped horizontally and shifted by up to 4 pixels with zero
fill (He et al.'s pad-and-crop), inside the model, so the pipeline stays the plain `cifar10`/`cifar100` one.
"""

import keras
from keras import layers, ops

from ..encoders import MLPHead
from ..fusion_model import FusionModel
from ..multiplicative_head import MultiplicativeConfig
from ..registry import register_model
from ..search_space import MULTIPLICATIVE, by_variant

VARIANTS = ("base", "add", "mul", "mulmix")
STAGES = ("stage1", "stage2", "stage3")  # the "modalities" Z_1, Z_2, Z_3
PAPER_BRANCH_WEIGHTS = (0.3, 0.3, 1.0)
PAPER_BETA = {"mul": 0.3, "mulmix": 0.3}  # the paper's CIFAR-100 optimum of both; 0.5 is its default
PAPER_MIX_HIDDEN = 256  # MulMix's predictors, like the Add head
# Moving statistics as in the reference Torch/PyTorch CIFAR ResNets (Keras' default momentum is 0.99); batch
# statistics synchronised across replicas, so that training under tf.distribute matches one device.
BN_MOMENTUM = 0.9
_SERIALIZABLE = keras.saving.register_keras_serializable(package="multisensory")


@_SERIALIZABLE
class ResidualBlock(layers.Layer):
    """He et al.'s basic block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, filters, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.stride = filters, stride
        self.conv1 = layers.Conv2D(filters, 3, stride, padding="same", use_bias=False, kernel_initializer="he_normal")
        self.bn1 = layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal")
        self.bn2 = layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)
        self.projection = None

    def build(self, input_shape):
        if self.stride != 1 or input_shape[-1] != self.filters:
            self.projection = [layers.Conv2D(self.filters, 1, self.stride, use_bias=False,
                                             kernel_initializer="he_normal"), layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)]

    def call(self, x, training=None):
        y = ops.relu(self.bn1(self.conv1(x), training=training))
        y = self.bn2(self.conv2(y), training=training)
        shortcut = x if self.projection is None else self.projection[1](self.projection[0](x), training=training)
        return ops.relu(y + shortcut)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


@_SERIALIZABLE
class ResNetStages(layers.Layer):
    """Stem and three stages of a CIFAR ResNet of `depth` = 6n + 2; returns the three pooled stage outputs."""

    def __init__(self, depth=32, augment=True, **kwargs):
        super().__init__(**kwargs)
        if (depth - 2) % 6:
            raise ValueError(f"A CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}.")
        self.depth, self.augment = depth, augment
        blocks = (depth - 2) // 6
        self.augmentation = [layers.RandomFlip("horizontal"),
                             layers.RandomTranslation(0.125, 0.125, fill_mode="constant")] if augment else []
        self.stem = [layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
                     layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True)]
        self.stages = [[ResidualBlock(f, 2 if s and not b else 1, name=f"stage{s + 1}_block{b + 1}")
                        for b in range(blocks)] for s, f in enumerate((16, 32, 64))]
        self.pool = layers.GlobalAveragePooling2D()

    def call(self, x, training=None):
        for layer in self.augmentation:
            x = layer(x, training=training)
        x = ops.relu(self.stem[1](self.stem[0](x), training=training))
        pooled = []
        for stage in self.stages:
            for block in stage:
                x = block(x, training=training)
            pooled.append(self.pool(x))
        return pooled

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "augment": self.augment}


def _image_modality(model):
    if len(model.modalities) != 1 or model.modalities[0].kind != "image":
        raise ValueError(f"resnet_cifar takes one image modality; got {[m.name for m in model.modalities]}.")
    return model.modality_names[0]


@_SERIALIZABLE
class ResNetCIFAR(FusionModel):
    """CIFAR ResNet with the `base` or `add` head, or any head of the zoo (`head=`, over the three stages).

    Args:
        modalities: one image `Modality`.
        task: a classification `Task`.
        depth: int. 6n + 2.
        variant: str. `"base"` or `"add"`: the plain head (and Z: the last stage, or the stages concatenated).
        augment: bool. Random flips and shifts in training.
        dropout: float. Dropout before the `add` head's output layer.
    """

    def __init__(self, modalities, task, depth=32, variant="base", augment=True, dropout=0.0, **kwargs):
        super().__init__(modalities, task, **kwargs)
        if variant not in ("base", "add"):
            raise ValueError(f"ResNetCIFAR variants are 'base' and 'add', got '{variant}'.")
        self.depth, self.variant, self.augment, self.dropout = depth, variant, augment, dropout
        self.image = _image_modality(self)
        self.backbone = ResNetStages(depth, augment, name="resnet")
        if self.plain_head:
            self.head = MLPHead(self.task.num_classes, (256,) if variant == "add" else (), dropout, name="head")
        self.concat = layers.Concatenate()

    @property
    def unimodal_names(self):
        return STAGES

    def forward(self, inputs, training=None):
        stages = self.backbone(inputs[self.image], training=training)
        fused = self.concat(stages) if self.variant == "add" else stages[-1]
        outputs = {"unimodal": dict(zip(STAGES, stages)), "fused": fused}
        if self.plain_head:
            outputs["prediction"] = self.head(fused, training=training)
        return outputs

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "variant": self.variant, "augment": self.augment,
                "dropout": self.dropout}


@register_model("resnet_cifar", tasks=("classification",), search_space=by_variant(
    "base", {"mul": MULTIPLICATIVE, "mulmix": MULTIPLICATIVE}))
def resnet_cifar(modalities, task, depth=32, variant="base", width=64, beta="paper", boosted=False, margin=0.0,
                 branch_weights="paper", augment=True, dropout=0.0, recipe="liu_cifar", **kwargs):
    """Builds the `variant` ResNet; `"paper"` gives Mul the paper's branch weights (0.3, 0.3, 1.0) and both Mul and
    MulMix the paper's CIFAR-100 optimum beta 0.3. It trains with Liu et al.'s recipe (`multisensory.zoo.recipes`;
    `recipe=None`: Adam)."""
    if variant in ("base", "add"):
        if beta != "paper" or branch_weights != "paper":
            raise ValueError(f"beta and branch_weights configure the multiplicative variants; variant '{variant}' "
                             f"has a plain head.")
        return ResNetCIFAR(modalities, task, depth, variant, augment, dropout, recipe=recipe, **kwargs)
    if variant not in ("mul", "mulmix"):
        raise ValueError(f"Unknown variant '{variant}'; resnet_cifar variants: {', '.join(VARIANTS)}.")
    if branch_weights == "paper":
        branch_weights = PAPER_BRANCH_WEIGHTS if variant == "mul" else None
    if beta == "paper":
        beta = PAPER_BETA[variant]
    mix = variant == "mulmix"
    head = MultiplicativeConfig(mix=mix, beta=beta, boosted=boosted, margin=margin, branch_weights=branch_weights,
                                hidden=(PAPER_MIX_HIDDEN,) if mix else (), width=width if mix else None,
                                dropout=dropout, fused_branch=False)
    return ResNetCIFAR(modalities, task, depth, "base", augment, dropout, head=head, recipe=recipe, **kwargs)
