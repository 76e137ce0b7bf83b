"""KerasTuner studies of zoo models: `ZooHyperModel`, `tuner(...)` and `tune(...)` (what `multisensory tune` does).

In KerasTuner's idiom:

```python
from multisensory import datasets
from multisensory.training import tuning

info = datasets.info("synthetic_av")
tuner = tuning.tuner("additive_fusion", info, tuner="bayesian", max_trials=20, directory="studies",
                     project_name="av")
tuner.search(datasets.load("synthetic_av", "train"), validation_data=datasets.load("synthetic_av", "validation"),
             epochs=5)
best = tuner.get_best_models(1)[0]
```

The hypermodel draws a configuration from the model's search space composed with those of its stages
(`multisensory.zoo.search_space`: the learning rate always; synergy's beta, gammas and batch size; the
multiplicative head's beta, boosted loss and margin), builds the model with `zoo.create` and compiles it with the
model's defaults at the drawn learning rate. The objective defaults to the task's main validation metric
(`metrics.selection_metric`: `val_accuracy`, `val_mae`, ...) and its direction follows the metric. A study with
`overwrite=False` (the default) resumes from its directory: finished trials are not run again.

Several machines tune one study with KerasTuner's own chief/worker mode: start the same command on every machine
with `KERASTUNER_TUNER_ID` ("chief" on one, "tuner0", "tuner1", ... on the others), `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT` (the chief's address) set, and one `--directory` all of them reach (a shared file system):

    KERASTUNER_TUNER_ID=chief  KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 multisensory tune ...
    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 multisensory tune ...

The chief runs the oracle and, once every trial has finished, writes the best model; the workers run the trials
and stop when the oracle has none left.
"""

import os

import keras
import keras_tuner

from multisensory import datasets, zoo
from multisensory.exports import export_saved_model

from . import distribute, runs
from .metrics import MINIMISED, selection_metric, task_metrics

TUNERS = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
          "hyperband": keras_tuner.Hyperband}


class ZooHyperModel(keras_tuner.HyperModel):
    """A zoo model's search space as a KerasTuner `HyperModel`.

    Args:
        model: str. Zoo model name.
        dataset_info: `DatasetInfo` the model is built for.
        config: dict. Fixed configuration (not searched); its `synergy` and `head` add their hyperparameters.
    """

    def __init__(self, model, dataset_info, config=None, **kwargs):
        super().__init__(name=model, **kwargs)
        self.model, self.info, self.config = model, dataset_info, dict(config or {})

    def build(self, hp):
        config, training = zoo.sample_config(self.model, hp, self.config)
        net = zoo.create(self.model, self.info, **config)
        net.compile()
        net.optimizer.learning_rate = training["learning_rate"]
        return net

    def fit(self, hp, model, x, *args, **kwargs):
        """`model.fit`; a batch size drawn by the search space re-batches a batched `tf.data` input."""
        batch_size = hp.values.get("batch_size")  # drawn in `build` when the space has one
        if batch_size is not None:
            x = x.unbatch().batch(batch_size)
            if kwargs.get("validation_data") is not None:
                kwargs["validation_data"] = kwargs["validation_data"].unbatch().batch(batch_size)
        return model.fit(x, *args, **kwargs)


def is_worker():
    """Whether this process is a worker of a chief/worker study (see the module docstring)."""
    return "KERASTUNER_ORACLE_IP" in os.environ and os.environ.get("KERASTUNER_TUNER_ID", "") != "chief"


def objective(task, name=None):
    """A `keras_tuner.Objective`: `name` (e.g. "val_mae") with its direction, or the task's main validation metric."""
    if name is None:
        return keras_tuner.Objective(*selection_metric(task))
    metric = name[4:] if name.startswith("val_") else name
    return keras_tuner.Objective(name, "min" if metric in MINIMISED else "max")


def _check_positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def tuner(model, dataset_info, tuner="random", max_trials=10, objective_name=None, directory="studies",
          project_name=None, config=None, seed=0, overwrite=False, max_epochs=10, strategy="default"):
    """A KerasTuner tuner of a zoo model (`random`, `bayesian` or `hyperband`; unknown names list the known ones).

    `max_epochs` is Hyperband's budget per trial; the other tuners run `max_trials` trials. `strategy` ("default" or
    "mirrored") trains every trial under that `tf.distribute` strategy (KerasTuner's `distribution_strategy`);
    several machines tune one study in chief/worker mode (see the module docstring), not under "multiworker".
    """
    if strategy == "multiworker":
        raise ValueError("A study runs on several machines in KerasTuner's chief/worker mode (KERASTUNER_TUNER_ID, "
                         "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT); --strategy multiworker is for `train`.")
    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner '{tuner}'; tuners: {', '.join(TUNERS)}.")
    _check_positive(max_trials=max_trials, max_epochs=max_epochs)
    if objective_name is not None:
        logged = ["loss"] + [m.name for m in task_metrics(dataset_info.task)]
        valid = [f"val_{n}" for n in logged] + logged
        if objective_name not in valid:
            raise ValueError(f"Unknown objective '{objective_name}'; the task's objectives: {', '.join(valid)}.")
    distribution = {} if strategy == "default" else {"distribution_strategy": distribute.strategy(strategy)}
    zoo.config_keys(model)  # unknown models list the known ones
    budget = {"max_epochs": max_epochs} if tuner == "hyperband" else {"max_trials": max_trials}
    return TUNERS[tuner](ZooHyperModel(model, dataset_info, config), objective=objective(dataset_info.task,
                                                                                           objective_name),
                         seed=seed, directory=directory, project_name=project_name or model, overwrite=overwrite,
                         **budget, **distribution)


def tune(model, dataset, directory="studies", project_name=None, tuner_name="random", max_trials=10,
         objective_name=None, epochs=5, batch_size=32, data_dir=None, seed=0, config=None, dataset_options=None,
         noise=None, drop=(), strategy="default", overwrite=False, verbose="auto"):
    """Runs (or resumes) a study and writes its best model like a `train` run.

    The best trial's model is restored (not retrained) and written to `<directory>/<project>/best/`: `model.keras`,
    `metrics.json` (test metrics, the best hyperparameters and the study's settings) and `export/<model>/1/`.
    TensorBoard logs of every trial, with their hyperparameters for the HParams dashboard, go to
    `<directory>/<project>/logs/`. `noise` and `drop` apply to every split, as in `runs.train`. Returns (tuner, test
    metrics of the best model; None in a worker of a chief/worker study).
    """
    dataset_options = dict(dataset_options or {})
    _check_positive(epochs=epochs)
    info = datasets.info(dataset, data_dir=data_dir or os.environ.get(datasets.DATA_ENV), **dataset_options)
    project_name = project_name or f"{model}-{dataset}"
    keras.utils.set_random_seed(seed)
    study = tuner(model, info, tuner_name, max_trials, objective_name, directory, project_name, config, seed,
                  overwrite, max_epochs=epochs, strategy=strategy)
    data = {split: datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=noise, drop=drop,
                                 seed=seed, **dataset_options) for split in ("train", "validation", "test")}
    root = os.path.join(directory, project_name)
    study.search(data["train"], validation_data=data["validation"], epochs=epochs, verbose=verbose,
                 callbacks=[keras.callbacks.TensorBoard(os.path.join(root, "logs"))])
    if is_worker():  # the chief writes the best model once every worker is done
        return study, None
    best, hyperparameters = study.get_best_models(1)[0], study.get_best_hyperparameters(1)[0]
    metrics = {k: float(v) for k, v in best.evaluate(data["test"], return_dict=True, verbose=0).items()}
    out = os.path.join(root, "best")
    os.makedirs(out, exist_ok=True)
    best.save(os.path.join(out, "model.keras"))
    export = export_saved_model(best, os.path.join(out, "export"), model_name=model)
    runs.write_json(os.path.join(out, "metrics.json"), {
        "test": metrics, "hyperparameters": hyperparameters.values,
        "settings": {"model": model, "dataset": dataset, "config": dict(config or {}), "dataset_options":
                     dataset_options, "tuner": tuner_name, "objective": study.oracle.objective.name,
                     "noise": noise or {}, "drop": sorted(drop), "strategy": strategy, "epochs": epochs,
                     "batch_size": batch_size,
                     "seed": seed, "export": export}})
    return study, metrics
