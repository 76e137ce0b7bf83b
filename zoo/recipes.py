"""Training recipes of the papers: the optimiser `compile()` builds by default, the schedule as Keras callbacks, the
batch size and the L2 term of the loss, named so that a model's configuration can carry one (`recipe=`).

- `mmlatch` (Paraskevopoulos et al. 2022, section 3): Adam(5e-4); the rate halved after 2 epochs without validation
  improvement, early stopping after 10, both on the task's main validation metric (`training.metrics.selection_metric`:
  `val_accuracy`, `val_mae`, ...), as every selection in the zoo (the zoo's choice).
- `liu_cifar` (Liu et al. 2018, section 6.1.1): SGD(0.1, momentum 0.9) and an L2 term 2e-4, the rate times 0.1 at
  50% and at 75% of the epochs, batch 100.
- `liu_higgs` (Liu et al. 2018, section 6.1.2, "we use SGD with momentum 0.9 ... L2 regularization 2e-5"): the paper
  gives only the momentum and the L2 coefficient; the rest is from the authors' public HIGGS scripts: SGD(0.01,
  momentum 0.9), the rate times 0.99 after every epoch, gradients clipped to a global norm of 10, batch 128.

Liu et al. give CIFAR's step values 0.1, 0.01, 0.001, not the epochs of the steps: they are taken at 50% and 75% of
the run, as the authors' CIFAR configuration (40k and 60k of 80k iterations) and He et al.'s schedule. Their L2
regularisation is a term of the loss, `l2 * tf.nn.l2_loss(W)` = (l2 / 2) ||W||^2 summed over the kernels of the
dense and convolution layers (not biases nor batch normalisation), so its gradient l2 * W passes through the
momentum like the task's (coupled; Keras' `weight_decay` of an optimiser is decoupled and after 2,000 steps at rate
0.1 and momentum 0.9 decays a weight 10x less): `FusionModel.loss_terms` adds it as the term "l2". A model without a
recipe trains with Adam(`default_learning_rate`) and no schedule.

Early stopping (`patience`, used by `multisensory train`, which by default selects the epoch on the task's main
validation metric): `mmlatch` 10 epochs (the paper), `liu_higgs` 10 (the authors' HIGGS scripts), `liu_cifar` none
(the step schedule runs to its end, as the paper's), `DEFAULT_PATIENCE` = 10 for models without a recipe.
"""

import dataclasses
from collections.abc import Callable

import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named training recipe (see the module docstring).

    Args:
        optimizer: callable returning a new optimiser, or None for the zoo's default (Adam at the model's
            `default_learning_rate`, AdamW with clipping under synergy).
        callbacks: callable `(epochs, monitor, mode, learning_rate=None) -> [keras.callbacks.Callback]` (`epochs`
            may be None when unknown; `monitor` and `mode` select on the task's main validation metric, as
            `best.keras` does; a schedule starts from `learning_rate`, None for the recipe's own initial rate).
        batch_size: int or None. The paper's batch size.
        l2: float. Coefficient of the loss term (l2 / 2) * sum of the squared kernel weights (see the module
            docstring); 0 for none.
        patience: int or None. Epochs without improvement of the task's main validation metric after which
            `multisensory train` stops (None: the recipe's schedule runs every epoch).
    """

    optimizer: Callable | None
    callbacks: Callable
    batch_size: int | None = None
    l2: float = 0.0
    patience: int | None = None


class StepDecay(keras.callbacks.Callback):
    """Sets the learning rate to `initial * factor ** k` in the epochs after the k-th of `at` (a step schedule).

    The rate follows from the epoch alone, so a run resumed at any epoch gets the same rate.
    """

    def __init__(self, at, initial, factor=0.1):
        super().__init__()
        self.at, self.initial, self.factor = sorted(int(a) for a in at), float(initial), float(factor)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.initial * self.factor ** sum(epoch >= a for a in self.at)


class EpochDecay(keras.callbacks.Callback):
    """Sets the learning rate to `initial * factor ** epoch` at the start of every epoch (resumes exactly)."""

    def __init__(self, initial, factor):
        super().__init__()
        self.initial, self.factor = float(initial), float(factor)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.initial * self.factor ** epoch


LIU_RATE = 0.1
LIU_HIGGS_RATE = 0.01


def _liu_steps(epochs, monitor=None, mode=None, learning_rate=None):
    """Liu et al.'s steps at 50% and 75% of the run (none when the number of epochs is unknown or below 2)."""
    if not epochs or epochs < 2:
        return []
    return [StepDecay(sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)}), learning_rate or LIU_RATE)]


def _liu_higgs_decay(epochs, monitor=None, mode=None, learning_rate=None):
    return [EpochDecay(learning_rate or LIU_HIGGS_RATE, 0.99)]


def _mmlatch_callbacks(epochs, monitor, mode, learning_rate=None):
    return [keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=2),
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=10, restore_best_weights=True)]


RECIPES = {
    "mmlatch": Recipe(None, _mmlatch_callbacks, patience=10),
    "liu_cifar": Recipe(lambda: keras.optimizers.SGD(LIU_RATE, momentum=0.9), _liu_steps, 100, l2=2e-4),
    "liu_higgs": Recipe(lambda: keras.optimizers.SGD(LIU_HIGGS_RATE, momentum=0.9, global_clipnorm=10.0),
                        _liu_higgs_decay, 128, l2=2e-5, patience=10),
}
# Early stopping of a model without a recipe (`multisensory train`): epochs without improvement before it stops.
DEFAULT_PATIENCE = 10


def patience(name):
    """The early-stopping patience of recipe `name` (None for no recipe: `DEFAULT_PATIENCE`)."""
    return DEFAULT_PATIENCE if name is None else get_recipe(name).patience


def get_recipe(name):
    """The `Recipe` named `name`; unknown names list the known ones."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe '{name}'; recipes: {', '.join(sorted(RECIPES))}.")
    return RECIPES[name]
