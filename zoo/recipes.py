"""Training recipes of the papers: the optimiser `compile()` builds by default, the schedule as Keras callbacks, and
the batch size, named so that a model's configuration can carry one (`recipe=`).

- `mmlatch` (Paraskevopoulos et al. 2022, section 3): Adam(5e-4); the rate halved after 2 epochs without
  validation improvement, early stopping after 10.
- `liu_cifar` (Liu et al. 2018, section 6.1.2): SGD(0.1, momentum 0.9) with weight decay 2e-4, the rate times 0.1
  at 50% and at 75% of the epochs, batch 100.
- `liu_higgs` (Liu et al. 2018, section 6.1.1): the same with weight decay 2e-5 (their L2 on HIGGS), batch 100.

Liu et al. give the step values 0.1, 0.01, 0.001, not the epochs of the steps: they are taken at 50% and 75% of
the run, He et al.'s CIFAR schedule (32k and 48k of 64k iterations). Their L2 regularisation is Keras' weight decay
of the optimiser, which for SGD subtracts lr * decay * w at every step: the gradient of (decay / 2) ||w||^2, except
that it bypasses the momentum (decoupled, Loshchilov & Hutter 2019), a difference of this implementation. A model
without a recipe trains with Adam(`default_learning_rate`) and no schedule.
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
        callbacks: callable `epochs -> [keras.callbacks.Callback]` (`epochs` may be None when unknown).
        batch_size: int or None. The paper's batch size.
    """

    optimizer: Callable | None
    callbacks: Callable
    batch_size: int | None = None


class StepDecay(keras.callbacks.Callback):
    """Sets the learning rate to `initial * factor ** k` in the epochs after the k-th of `at` (a step schedule).

    The rate follows from the epoch alone, so a run resumed at any epoch gets the same rate.
    """

    def __init__(self, at, initial, factor=0.1):
        super().__init__()
        self.at, self.initial, self.factor = sorted(int(a) for a in at), float(initial), float(factor)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = self.initial * self.factor ** sum(epoch >= a for a in self.at)


LIU_RATE = 0.1


def _liu_steps(epochs):
    """Liu et al.'s steps at 50% and 75% of the run (none when the number of epochs is unknown or below 2)."""
    if not epochs or epochs < 2:
        return []
    return [StepDecay(sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)}), LIU_RATE)]


def _sgd(weight_decay):
    return lambda: keras.optimizers.SGD(LIU_RATE, momentum=0.9, weight_decay=weight_decay)


RECIPES = {
    "mmlatch": Recipe(None, lambda epochs: [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)]),
    "liu_cifar": Recipe(_sgd(2e-4), _liu_steps, 100),
    "liu_higgs": Recipe(_sgd(2e-5), _liu_steps, 100),
}


def get_recipe(name):
    """The `Recipe` named `name`; unknown names list the known ones."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe '{name}'; recipes: {', '.join(sorted(RECIPES))}.")
    return RECIPES[name]
