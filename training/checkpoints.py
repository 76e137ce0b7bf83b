"""The callbacks that keep a run's progress: a backup to resume from and the best model so far, both written
atomically (`multisensory.training.atomic`) and both surviving a resume.

`Backup` is Keras' `BackupAndRestore` with its state made crash-safe and complete: each epoch's weights (with the
optimiser's) go to a new file `epoch-<n>.weights.h5`, then `state.json` (the epoch reached, the weights file, the
best model's value, the state of the model's random streams such as dropout masks, which Keras' weights files
leave out) is replaced in one rename, then older weights are removed; so `state.json` always names a complete file.
A backup that still cannot be read (a disk fault, a copy cut short) is moved aside to `backup.unreadable-<time>/`,
reported, and the run starts over, never a raw h5py error on every rerun.

`BestModel` selects the run's epoch: it saves `best.keras` when the monitored validation metric improves, keeps that
epoch's weights (`restore` puts them back after `fit`) and stops training after `patience` epochs without
improvement. Its best value, epoch and weights (`best-epoch.npz`) are kept in the backup, which runs it before
saving its state, so a resumed run compares against the best epoch before the interruption (never overwriting
`best.keras` with a worse resumed epoch), stops when the uninterrupted run would, and restores the same weights.
"""

import json
import os
import shutil
import time
import warnings

import keras
import numpy as np

from multisensory.exports.presets import UNREADABLE  # what reading damaged weights raises

from . import atomic

BEST_WEIGHTS = "best-epoch.npz"  # the selected epoch's weights in a backup: plain arrays, read without pickle


class BestModel(keras.callbacks.Callback):
    """The selection of a run's epoch: tracks the epoch whose `monitor` is best so far, keeps its weights for
    `restore`, saves the model to `path` at every improvement (atomically), and with `patience` stops training after
    that many epochs without improvement: Keras' `EarlyStopping(restore_best_weights=True)`, resumable, since
    `Backup` keeps its state.

    Args:
        path: str or None. A `.keras` path (None writes no file, as on a worker that is not the chief).
        monitor: str. A logged metric, e.g. "val_accuracy".
        mode: "max" or "min".
        patience: int or None. Epochs without improvement before training stops (None: never).
    """

    def __init__(self, path, monitor, mode, patience=None):
        super().__init__()
        self.path, self.monitor, self.mode, self.patience = path, monitor, mode, patience
        self.best = self.best_epoch = self.weights = self.saved_epoch = None
        self.epochs_run, self.improved = 0, False

    def improves(self, value):
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def on_epoch_end(self, epoch, logs=None):
        self.update(epoch, logs)
        self.save()

    def update(self, epoch, logs=None):
        """Takes the epoch's value: a new best keeps the weights; patience may stop training."""
        self.epochs_run, self.improved = epoch + 1, False
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"BestModel: '{self.monitor}' is not logged (logged: {sorted(logs or {})}); "
                          "best.keras is not saved.", stacklevel=2)
            return
        if np.isfinite(value) and self.improves(float(value)):
            self.best, self.best_epoch, self.improved = float(value), epoch + 1, True
            self.weights = self.model.get_weights()
        if self.patience is not None and self.best_epoch is not None and (
                self.epochs_run - self.best_epoch >= self.patience):
            self.model.stop_training = True

    def save(self):
        """Writes `path` with the best epoch's model unless it holds it already."""
        if self.path is None or self.weights is None or self.saved_epoch == self.best_epoch:
            return
        current = None if self.improved else self.model.get_weights()
        if current is not None:  # after a resume: best.keras may lack the best epoch the backup recorded
            self.model.set_weights(self.weights)
        try:
            atomic.save_model(self.model, self.path)
        finally:
            if current is not None:
                self.model.set_weights(current)
        self.saved_epoch = self.best_epoch

    def restore(self):
        """Sets the model's weights to the best epoch's; returns that epoch (None when no epoch had a finite value,
        and the weights are left as they are)."""
        if self.weights is not None:
            self.model.set_weights(self.weights)
        return self.best_epoch


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


def move_aside(folder, error):
    """Moves an unreadable backup to `<folder>.unreadable-<time>/` (kept, not deleted) and says so."""
    aside = f"{folder}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
    shutil.move(folder, aside)
    warnings.warn(f"The backup in '{folder}' cannot be read ({type(error).__name__}: {error}); it was moved to "
                  f"'{aside}' and training starts over from the first epoch.", stacklevel=3)
    print(f"warning: unreadable backup moved to {aside}; training starts over")


def check_backup(folder):
    """Reads every byte of a backup's files (state, weights, best weights) and moves an unreadable one aside
    (`move_aside`), before a resumed run replays the data of the epochs it holds: a run that starts over must see
    the data of a run from scratch."""
    if not os.path.exists(os.path.join(folder, "state.json")):
        return
    import h5py

    try:
        with open(os.path.join(folder, "state.json")) as f:
            state = json.load(f)
        with h5py.File(os.path.join(folder, state["weights"]), "r") as weights:
            weights.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
        if os.path.exists(os.path.join(folder, BEST_WEIGHTS)):
            with np.load(os.path.join(folder, BEST_WEIGHTS), allow_pickle=False) as arrays:
                for name in arrays.files:
                    arrays[name]
    except UNREADABLE as error:
        move_aside(folder, error)




class Backup(keras.callbacks.Callback):
    """Saves the training state at the end of every epoch and restores it when `fit` starts (see the module
    docstring). The folder stays when `fit` ends: the caller removes it once the run's results are written, so a
    kill in between still resumes (with no epoch left to train).

    Args:
        folder: str. The backup folder.
        best: `BestModel` or None, whose state (best value, epoch, weights) is saved and restored with the backup's.
            The backup runs it at the end of every epoch (so it is not given to `fit` separately): its update before
            the state is written, so the state holds the best including this epoch's, and its `best.keras` after,
            so a failure there loses no epoch; the state says which best epoch `best.keras` holds, and a resumed
            run writes it again when it missed one.
    """

    def __init__(self, folder, best=None):
        super().__init__()
        self.folder, self.best = folder, best
        self.state_path = os.path.join(folder, "state.json")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.state_path):
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        variables = self.model.variables + (self.model.optimizer.variables if self.model.optimizer else [])
        initial = [v.numpy() for v in variables]
        try:
            with open(self.state_path) as f:
                state = json.load(f)
            self.model.load_weights(os.path.join(self.folder, state["weights"]))
            best_weights = None
            if os.path.exists(os.path.join(self.folder, BEST_WEIGHTS)):
                with np.load(os.path.join(self.folder, BEST_WEIGHTS), allow_pickle=False) as arrays:
                    best_weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
        except UNREADABLE as error:  # corrupt bytes as well as a cut: h5py's RuntimeError, zip's BadZipFile
            for variable, value in zip(variables, initial):  # a load that failed midway changed some weights
                variable.assign(value)
            move_aside(self.folder, error)
            return
        generators = seed_generators(self.model)
        for generator, value in zip(generators, state.get("seed_generators", ())):
            generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
        self.model._initial_epoch = int(state["epoch"])
        if self.best is not None:
            self.best.epochs_run = int(state["epoch"])
            if state.get("best") is not None:
                self.best.best, self.best.best_epoch = float(state["best"]), state.get("best_epoch")
                self.best.saved_epoch = state.get("best_saved_epoch", self.best.best_epoch)
                if best_weights is not None:
                    self.best.weights = best_weights
        print(f"resuming from the backup in {self.folder} at epoch {state['epoch'] + 1}")
        if self.best is not None:
            self.best.save()  # best.keras, if the interruption came before it held the recorded best epoch

    def set_model(self, model):
        super().set_model(model)
        if self.best is not None:
            self.best.set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        if self.best is not None:
            self.best.update(epoch, logs)
        os.makedirs(self.folder, exist_ok=True)
        weights = f"epoch-{epoch + 1}.weights.h5"
        atomic.save_weights(self.model, os.path.join(self.folder, weights))
        if self.best is not None and self.best.improved:
            with atomic.destination(os.path.join(self.folder, BEST_WEIGHTS)) as temporary:
                np.savez(temporary, *self.best.weights)
        state = {"epoch": epoch + 1, "weights": weights, "best": None if self.best is None else self.best.best,
                 "best_epoch": None if self.best is None else self.best.best_epoch,
                 "best_saved_epoch": None if self.best is None else self.best.saved_epoch,
                 "seed_generators": [np.asarray(g.state.value).tolist() for g in seed_generators(self.model)]}
        atomic.write_json(self.state_path, state)
        for name in os.listdir(self.folder):
            if name.endswith(".weights.h5") and name != weights:
                os.remove(os.path.join(self.folder, name))
        if self.best is not None and self.best.saved_epoch != self.best.best_epoch:
            # last: a failure here (a full disk) leaves a state that resumes after this epoch
            self.best.save()
            atomic.write_json(self.state_path, {**state, "best_saved_epoch": self.best.saved_epoch})
