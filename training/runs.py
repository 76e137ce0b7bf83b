"""Training, evaluation and comparison runs: what `multisensory train | evaluate | compare` do.

A training run writes into its output directory:

    logs/                 TensorBoard logs: every metric and loss term (synergy's, each multiplicative branch's), the
                          learning rate and examples/s, per epoch and, with `log_every`, every that many steps;
                          the model's graph
    backup/               `BackupAndRestore` state: rerunning the same command resumes an interrupted run
                          at the epoch it stopped (removed when the run completes)
    best.keras            the model of the epoch with the best validation task metric (`metrics.selection_metric`:
                          val_accuracy, val_mae, ...), not val_loss, which holds training-only terms
    model.keras           the final model
    metrics.json          test metrics of the final model, with the run's settings
    export/<model>/<v>/   a SavedModel in TF-Serving layout (see `multisensory.exports`)

Test metrics are measured under the run's own noise and dropped-modality settings (the condition trained for);
`evaluate` measures any other condition.
"""

import json
import math
import os

import keras

from multisensory import datasets, zoo
from multisensory.exports import export_saved_model

from . import distribute
from .metrics import selection_metric
from .model_graph import ModelGraph
from .throughput import Throughput


def _strict(value):
    """`value` with every non-finite float written as the string "inf", "-inf" or "nan" (strict JSON has no such
    numbers; an SNR of inf, no noise, appears as "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(path, payload):
    """Writes a report (metrics, settings) as indented, strict JSON (non-finite numbers as strings, see `_strict`)."""
    with open(path, "w") as f:
        json.dump(_strict(payload), f, indent=2, sort_keys=True, allow_nan=False)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def train(model, dataset, out, data_dir=None, epochs=5, batch_size=None, noise=None, dropout=None, drop=(), seed=0,
          config=None, dataset_options=None, callbacks=(), export=True, strategy="default", log_every="epoch",
          verbose="auto"):
    """Trains a zoo model with `model.fit` and returns the test metrics (a dict).

    Args:
        model: str. Zoo model name.
        dataset: str. Dataset name.
        out: str. Output directory (see the module docstring).
        data_dir: str. Directory of the dataset's files (default `$MULTISENSORY_DATA`).
        epochs, batch_size, seed: training settings; `seed` also seeds the data. `batch_size=None` takes the model's
            recipe's (`multisensory.zoo.recipes`), else 32.
        noise: dict. Modality to SNR of white noise, in every split.
        dropout: dict. Modality to per-example dropout probability, in training only.
        drop: iterable of str. Modalities zeroed in every split (unimodal baselines).
        config: dict. Model configuration passed to `zoo.create`.
        dataset_options: dict. Options passed to `datasets.load`.
        callbacks: extra Keras callbacks (after the schedule of the model's recipe, `net.recipe(epochs)`).
        export: bool. Write the SavedModel export.
        strategy: "default", "mirrored" or "multiworker" (`multisensory.training.distribute`); `batch_size` is the
            global batch. Under "multiworker" every worker runs the same command; worker 0 (the chief) writes the
            run folder, each worker keeps its own `backup/worker-<i>/`, so a restarted worker resumes.
        log_every: "epoch" or an int: TensorBoard's `update_freq` (scalars every that many steps, besides every epoch).
        verbose: Keras `fit` verbosity ("auto" shows the progress bar).
    """
    config, dataset_options = dict(config or {}), dict(dataset_options or {})
    if int(epochs) < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}: a run of no epoch would save an untrained model.")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(seed)
    data_info = datasets.info(dataset, data_dir=data_dir or os.environ.get(datasets.DATA_ENV), **dataset_options)
    scope = distribute.strategy(strategy)
    with scope.scope():
        net = zoo.create(model, data_info, **config)
        net.compile()
    worker = distribute.worker_index(scope)
    batch_size = batch_size or net.recipe_batch_size or 32
    monitor, mode = selection_metric(net.task)
    # Modality dropout is training augmentation: the train split alone gets it.
    data = {split: datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=noise,
                                 dropout=dropout if split == "train" else None, drop=drop, seed=seed,
                                 **dataset_options)
            for split in ("train", "validation", "test")}
    backup = os.path.join(out, "backup") if strategy != "multiworker" else os.path.join(out, "backup",
                                                                                         f"worker-{worker}")
    chief_only = [Throughput(batch_size), ModelGraph(os.path.join(out, "logs")),
                  keras.callbacks.TensorBoard(os.path.join(out, "logs"), update_freq=log_every),
                  keras.callbacks.ModelCheckpoint(os.path.join(out, "best.keras"), monitor=monitor, mode=mode,
                                                  save_best_only=True)] if worker == 0 else []
    net.fit(data["train"], validation_data=data["validation"], epochs=epochs, verbose=verbose, callbacks=[
        keras.callbacks.BackupAndRestore(backup), *chief_only, *net.recipe(epochs), *callbacks])
    metrics = _floats(net.evaluate(data["test"], return_dict=True, verbose=0))
    if worker != 0:
        return metrics
    net.save(os.path.join(out, "model.keras"))
    settings = {"model": model, "dataset": dataset, "config": config, "dataset_options": dataset_options,
                "epochs": epochs, "batch_size": batch_size, "noise": noise or {}, "dropout": dropout or {},
                "drop": sorted(drop), "seed": seed, "strategy": strategy,
                "replicas": scope.num_replicas_in_sync}
    if export:
        settings["export"] = export_saved_model(net, os.path.join(out, "export"), model_name=model)
    write_json(os.path.join(out, "metrics.json"), {"test": metrics, "settings": settings})
    return metrics


def load_model(path):
    """A saved zoo model (`.keras`), loaded with `safe_mode=True`."""
    return keras.saving.load_model(path, safe_mode=True)


def evaluate(model, dataset, data_dir=None, split="test", batch_size=32, noise=None, drop=(), corruptions=None,
             seed=0, dataset_options=None):
    """Metrics (a dict) of a model on a split under the given noise, corruptions and dropped modalities.

    Args:
        model: a zoo model, or the path of a saved `.keras` model.

    Noise is drawn per batch (see `multisensory.datasets.noise`): the same seed and batch size as a training run
    reproduce its test metrics exactly.
    """
    model = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    data = datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=noise, drop=drop,
                         corruptions=corruptions, seed=seed, **dict(dataset_options or {}))
    return _floats(model.evaluate(data, return_dict=True, verbose=0))


def compare(model, dataset, out, **train_args):
    """Trains the fusion model and, with the same settings, one unimodal baseline per modality.

    A unimodal baseline is the same model with every other modality zeroed in training and test (Barnum et al.
    2020 build theirs this way). Returns and writes to `<out>/compare.json` {run: test metrics} with runs
    `fusion` and `<modality>_only`.
    """
    names = datasets.info(dataset).modality_names
    runs = {"fusion": ()}
    runs.update({f"{m}_only": tuple(n for n in names if n != m) for m in names})
    results = {}
    for run, drop in runs.items():
        print(f"== {run}: {model} on {dataset}" + (f", dropped: {', '.join(drop)}" if drop else ""))
        results[run] = train(model, dataset, os.path.join(out, run), drop=drop, **train_args)
    write_json(os.path.join(out, "compare.json"), results)
    return results


def _floats(metrics):
    return {k: float(v) for k, v in metrics.items()}
