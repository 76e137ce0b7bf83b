"""Training, evaluation and comparison runs: what `multisensory train | evaluate | compare` do.

A training run writes into its output directory (every file atomically: written under a temporary name, then
renamed, so a kill or a full disk never leaves a truncated file under a real name):

    run.json              the run's settings, written when it starts: a rerun with other settings is refused
    .lock                 while the run is going: a second run on the folder is refused
    logs/                 TensorBoard logs: every metric and loss term (synergy's, each multiplicative branch's), the
                          learning rate and examples/s, per epoch and, with `log_every`, every that many steps;
                          the model's graph
    backup/               the state after the last complete epoch (`multisensory.training.checkpoints`): rerunning the
                          same command resumes an interrupted run there, with the data order, noise and dropout
                          masks an uninterrupted run has, so it ends with the same weights (removed when the run
                          completes)
    best.keras            the model of the epoch with the best validation task metric (`metrics.selection_metric`:
                          val_accuracy, val_mae, ...), not val_loss, which holds training-only terms; best over
                          the whole run, across resumes
    model.keras           the selected model: by default the best epoch's (as best.keras; `select="last"`: the last
                          epoch's); training stops after `patience` epochs without improvement
    metrics.json          test metrics of the selected model, with the run's settings and the selection (the
                          selected epoch, its validation value, the epochs that ran)
    export/<model>/<v>/   a SavedModel of the selected model in TF-Serving layout (see `multisensory.exports`)

A folder that holds a finished run is refused unless `existing="overwrite"` (`--overwrite`); see
`multisensory.training.run_folder`. Test metrics are measured under the run's own noise and dropped-modality
settings (the condition trained for); `evaluate` measures any other condition.
"""

import contextlib
import json
import os
import shutil

import keras

from multisensory import datasets, zoo
from multisensory.exports import export_saved_model
from multisensory.exports.presets import load_keras_file
from multisensory.zoo import recipes
from multisensory.zoo.precision import check as check_precision, recorded as recorded_precision

from . import atomic, checkpoints, distribute, run_folder
from .atomic import write_json
from .metrics import selection_metric
from .model_graph import ModelGraph
from .throughput import Throughput


def read_json(path):
    with open(path) as f:
        return json.load(f)


KERAS_PASSES_PER_EPOCH = 2
SELECTIONS = ("best", "last")


def train(model, dataset, out, data_dir=None, epochs=5, batch_size=None, noise=None, dropout=None, drop=(), seed=0,
          config=None, dataset_options=None, callbacks=(), export=True, strategy="default", log_every="epoch",
          existing="refuse", verbose="auto", steps_per_execution=1, select="best", patience="recipe",
          learning_rate=None, data_service=None, precision="float32"):
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
        existing: what to do with a run already in `out`: "refuse" (a finished one; an interrupted one with the same
            settings resumes), "resume", "overwrite" or "reuse" (`multisensory.training.run_folder`).
        verbose: Keras `fit` verbosity ("auto" shows the progress bar).
        steps_per_execution: int. Batches per call of the compiled training function (Keras' `compile` argument):
            the same weights, less time per step for small models (docs/performance.md); callbacks, the progress
            bar and TensorBoard's per-step scalars (`log_every`, counted in calls) then see every that many batches.
        select: "best" (default) or "last". Which epoch's weights the run reports, saves (`model.keras`), exports
            and publishes: the one with the best value of the task's main validation metric (Keras'
            `EarlyStopping(restore_best_weights=True)`), or the last one.
        patience: int, None or "recipe". Stop after that many epochs without improvement of that metric (None:
            run every epoch); "recipe" takes the model's recipe's (`multisensory.zoo.recipes.patience`).
        learning_rate: float or None. The optimiser's initial learning rate, from which the recipe's schedule (if
            any) scales; None: the recipe's, else the model's `default_learning_rate`.
        data_service: str or None. A tf.data service dispatcher ("grpc://host:port") whose workers run the training
            split's input pipeline (`datasets.load`); evaluation splits are read here.
        precision: "float32", "mixed_float16" or "mixed_bfloat16": the dtype policy the model's layers compute in
            (`multisensory.zoo.precision`; refused where this machine's devices cannot run it). The saved model,
            its weights and its exports take and return float32 whatever it is.
    """
    config, dataset_options = dict(config or {}), dict(dataset_options or {})
    if int(epochs) < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}: a run of no epoch would save an untrained model.")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if int(steps_per_execution) < 1:
        raise ValueError(f"steps_per_execution must be at least 1, got {steps_per_execution}.")
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {list(SELECTIONS)}, got {select!r}.")
    if patience not in (None, "recipe") and (isinstance(patience, bool) or int(patience) != patience
                                             or int(patience) < 1):
        raise ValueError(f"patience must be a positive number of epochs, None or 'recipe', got {patience!r}.")
    if learning_rate is not None and not float(learning_rate) > 0:
        raise ValueError(f"learning_rate must be a positive number or None (the recipe's), got {learning_rate!r}.")
    check_precision(precision)
    keras.utils.set_random_seed(seed)
    data_info = datasets.info(dataset, data_dir=data_dir or os.environ.get(datasets.DATA_ENV), **dataset_options)
    scope = distribute.strategy(strategy)
    worker = distribute.worker_index(scope)
    with scope.scope():
        net = zoo.create(model, data_info, precision=precision, **config)
        net.compile(steps_per_execution=int(steps_per_execution))
        if learning_rate is not None:
            net.optimizer.learning_rate = float(learning_rate)
    batch_size = batch_size or net.recipe_batch_size or 32
    patience = recipes.patience(net.recipe_name) if patience == "recipe" else patience
    settings = {"model": model, "dataset": dataset, "config": config, "dataset_options": dataset_options,
                "epochs": epochs, "batch_size": batch_size, "noise": noise or {}, "dropout": dropout or {},
                "drop": sorted(drop), "seed": seed, "strategy": strategy, "replicas": scope.num_replicas_in_sync,
                "select": select, "patience": None if patience is None else int(patience),
                "learning_rate": None if learning_rate is None else float(learning_rate),
                **recorded_precision(precision),  # nothing for float32: runs from before the option resume
                # where the data came from: a resume or reuse on other files is refused (run_folder.prepare)
                "data": datasets.registry.data_source(dataset, data_dir)}
    os.makedirs(out, exist_ok=True)
    with run_folder.Lock(out, ".lock" if strategy != "multiworker" else f".lock-worker-{worker}"):
        finished = run_folder.prepare(out, settings, existing, chief=worker == 0)
        if finished is not None:
            print(f"reusing the finished run in {out} (same settings)")
            return finished["test"]
        return _fit(net, dataset, out, settings, data_dir, worker, callbacks, export, log_every, verbose,
                    data_service)


def _fit(net, dataset, out, settings, data_dir, worker, callbacks, export, log_every, verbose, data_service=None):
    """`train`'s work once the run folder is prepared: fit, test metrics, and (chief) the files of the run."""
    batch_size, epochs = settings["batch_size"], settings["epochs"]
    monitor, mode = selection_metric(net.task)
    # Modality dropout is training augmentation: the train split alone gets it.
    data = {split: datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=settings["noise"],
                                 data_service=data_service if split == "train" else None,
                                 dropout=settings["dropout"] if split == "train" else None, drop=settings["drop"],
                                 seed=settings["seed"], **settings["dataset_options"])
            for split in ("train", "validation", "test")}
    if worker == 0:
        run_folder.record(out, settings)
    backup = os.path.join(out, "backup") if settings["strategy"] != "multiworker" else os.path.join(
        out, "backup", f"worker-{worker}")
    # what a killed run was writing: each worker owns its backup, the chief the run's own files and exports
    atomic.remove_leftovers(backup, recursive=True)
    if worker == 0:
        atomic.remove_leftovers(out)
        atomic.remove_leftovers(os.path.join(out, "export"), recursive=True)
    # Each pass over a shuffled split draws its order and training noise from the seed's streams, in turn, and Keras'
    # fit starts KERAS_PASSES_PER_EPOCH passes per epoch over a split of known size (one it reads, one it discards):
    # starting the passes of the epochs a backup holds gives a resumed run the order and noise of an uninterrupted
    # one (tested: the same final weights).
    checkpoints.check_backup(backup)  # an unreadable one is moved aside first: starting over replays nothing
    for _ in range(KERAS_PASSES_PER_EPOCH * checkpoints.saved_epoch(backup)):
        iter(data["train"])
    best = checkpoints.BestModel(os.path.join(out, "best.keras") if worker == 0 else None, monitor, mode,
                                 settings["patience"])
    chief_only = [Throughput(batch_size), ModelGraph(os.path.join(out, "logs")),
                  keras.callbacks.TensorBoard(os.path.join(out, "logs"), update_freq=log_every)
                  ] if worker == 0 else []  # `best` runs inside the backup, before the backup's state is saved
    net.fit(data["train"], validation_data=data["validation"], epochs=epochs, verbose=verbose, callbacks=[
        checkpoints.Backup(backup, best), *chief_only, *net.recipe(epochs, settings["learning_rate"]), *callbacks])
    selected = best.restore() if settings["select"] == "best" else None
    selection = {"select": settings["select"], "monitor": monitor, "mode": mode,
                 "epoch": selected or best.epochs_run, "value": best.best if selected else None,
                 "best_epoch": best.best_epoch, "epochs_run": best.epochs_run, "epochs": epochs,
                 "patience": settings["patience"]}
    if verbose:
        print(f"selected epoch {selection['epoch']} of {best.epochs_run}"
              + (f" ({monitor} {best.best:.4f})" if selected else f" (the last; {monitor} best at epoch "
                 f"{best.best_epoch})"))
    metrics = _floats(net.evaluate(data["test"], return_dict=True, verbose=0))
    if worker == 0:
        atomic.save_model(net, os.path.join(out, "model.keras"))
        if export:
            settings["export"] = export_saved_model(net, os.path.join(out, "export"), model_name=settings["model"])
        write_json(os.path.join(out, "metrics.json"), {"test": metrics, "settings": settings, "selection": selection})
    shutil.rmtree(backup, ignore_errors=True)  # last: a kill before this point resumes
    with contextlib.suppress(OSError):  # multiworker: backup/ once every worker's is gone
        os.rmdir(os.path.join(out, "backup"))
    return metrics


def load_model(path):
    """A saved zoo model (`.keras`), loaded with `safe_mode=True`; a missing, truncated or foreign file is named."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'{path}' is not a file; expected a .keras model written by `train`.")
    return load_keras_file(path)


def evaluate(model, dataset, data_dir=None, split="test", batch_size=32, noise=None, drop=(), corruptions=None,
             seed=0, dataset_options=None):
    """Metrics (a dict) of a model on a split under the given noise, corruptions and dropped modalities.

    Args:
        model: a zoo model, or the path of a saved `.keras` model.

    Noise is drawn per batch (see `multisensory.datasets.noise`) from the seed, with TensorFlow's global seed set to it
    as `train` does (`keras.utils.set_random_seed`): the same seed and batch size as a training run reproduce its test
    metrics exactly, in any process.
    """
    keras.utils.set_random_seed(seed)
    model = load_model(model) if isinstance(model, (str, os.PathLike)) else model
    data = datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=noise, drop=drop,
                         corruptions=corruptions, seed=seed, **dict(dataset_options or {}))
    return _floats(model.evaluate(data, return_dict=True, verbose=0))


def compare(model, dataset, out, existing="reuse", **train_args):
    """Trains the fusion model and, with the same settings, one unimodal baseline per modality.

    A unimodal baseline is the same model with every other modality zeroed in training and test (Barnum et al.
    2020 build theirs this way). Returns and writes to `<out>/compare.json` {run: test metrics} with runs
    `fusion` and `<modality>_only`. A rerun of the same comparison reuses its finished runs and resumes the
    interrupted one (`existing`, as in `train`).
    """
    names = datasets.info(dataset).modality_names
    runs = {"fusion": ()}
    runs.update({f"{m}_only": tuple(n for n in names if n != m) for m in names})
    results = {}
    for run, drop in runs.items():
        print(f"== {run}: {model} on {dataset}" + (f", dropped: {', '.join(drop)}" if drop else ""))
        results[run] = train(model, dataset, os.path.join(out, run), drop=drop, existing=existing, **train_args)
    write_json(os.path.join(out, "compare.json"), results)
    return results


def _floats(metrics):
    return {k: float(v) for k, v in metrics.items()}
