"""The callbacks that keep a run's progress: a backup to resume from and the best model so far, both written
atomically (`multisensory.training.atomic`) and both surviving a resume.

`Backup` is Keras' `BackupAndRestore` with its state made crash-safe and complete: each epoch's weights (with the
optimiser's) go to a new file `epoch-<n>.weights.h5`, then `state.json` (the epoch reached, the weights file, the
best model's value, the state of the model's random streams such as dropout masks, which Keras' weights files
leave out) is replaced in one rename, then older weights are removed; so `state.json` always names a complete file.
A backup that still cannot be read (a disk fault, a copy cut short) is moved aside to `backup.unreadable-<time>/`,
reported, and the run starts over, never a raw h5py error on every rerun.

`BestModel` saves `best.keras` when the monitored validation metric improves; its best value is kept in the backup
state, so a resumed run compares against the best epoch before the interruption instead of overwriting `best.keras`
with its first resumed epoch.
"""

import json
import os
import shutil
import time
import warnings

import keras
import numpy as np

from . import atomic


class BestModel(keras.callbacks.Callback):
    """Saves the model to `path` (atomically) at every epoch whose `monitor` improves on the best so far.

    Args:
        path: str. A `.keras` path.
        monitor: str. A logged metric, e.g. "val_accuracy".
        mode: "max" or "min".
    """

    def __init__(self, path, monitor, mode):
        super().__init__()
        self.path, self.monitor, self.mode = path, monitor, mode
        self.best = None

    def improves(self, value):
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"BestModel: '{self.monitor}' is not logged (logged: {sorted(logs or {})}); "
                          "best.keras is not saved.", stacklevel=2)
            return
        if np.isfinite(value) and self.improves(float(value)):
            self.best = float(value)
            atomic.save_model(self.model, self.path)


def seed_generators(model):
    """The model's random streams (dropout masks, ...): Keras keeps their state outside the saved weights."""
    return [g for layer in model._flatten_layers() for g in getattr(layer, "_seed_generators", ())]


def saved_epoch(folder):
    """The number of epochs a backup in `folder` holds (0 without a readable one)."""
    try:
        with open(os.path.join(folder, "state.json")) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class Backup(keras.callbacks.Callback):
    """Saves the training state at the end of every epoch and restores it when `fit` starts (see the module
    docstring). The folder stays when `fit` ends: the caller removes it once the run's results are written, so a
    kill in between still resumes (with no epoch left to train).

    Args:
        folder: str. The backup folder.
        best: `BestModel` or None, whose best value is saved and restored with the state. The backup runs it at the
            end of every epoch, before saving the state (so it is not given to `fit` separately): the state then
            holds the best value including this epoch's, whatever the order of the callbacks.
    """

    def __init__(self, folder, best=None):
        super().__init__()
        self.folder, self.best = folder, best
        self.state_path = os.path.join(folder, "state.json")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.state_path):
            return
        try:
            with open(self.state_path) as f:
                state = json.load(f)
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.folder, state["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            aside = f"{self.folder}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
            shutil.move(self.folder, aside)
            warnings.warn(f"The backup in '{self.folder}' cannot be read ({type(error).__name__}: {error}); it was "
                          f"moved to '{aside}' and training starts over from the first epoch.", stacklevel=2)
            print(f"warning: unreadable backup moved to {aside}; training starts over")
            return
        generators = seed_generators(self.model)
        for generator, value in zip(generators, state.get("seed_generators", ())):
            generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
        self.model._initial_epoch = int(state["epoch"])
        if self.best is not None and state.get("best") is not None:
            self.best.best = float(state["best"])
        print(f"resuming from the backup in {self.folder} at epoch {state['epoch'] + 1}")

    def set_model(self, model):
        super().set_model(model)
        if self.best is not None:
            self.best.set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        if self.best is not None:
            self.best.on_epoch_end(epoch, logs)
        os.makedirs(self.folder, exist_ok=True)
        weights = f"epoch-{epoch + 1}.weights.h5"
        atomic.save_weights(self.model, os.path.join(self.folder, weights))
        atomic.write_json(self.state_path, {
            "epoch": epoch + 1, "weights": weights, "best": None if self.best is None else self.best.best,
            "seed_generators": [np.asarray(g.state.value).tolist() for g in seed_generators(self.model)]})
        for name in os.listdir(self.folder):
            if name.endswith(".weights.h5") and name != weights:
                os.remove(os.path.join(self.folder, name))
