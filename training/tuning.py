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

A study's settings (model, data, fixed configuration, tuner, objective, epochs, batch size, seed) are written to
`<directory>/<project>/study.json` when it starts: a rerun into that study with other settings (another `--noise`, a
new objective) is refused with the differences listed, as `train` refuses a run folder, since resuming would rank
the old trials on the new terms. One process tunes a study at a time (a lock file; chief/worker mode locks per
tuner id).

Ranking (`ranking`): trials by the objective; trials tied with the best (a saturated metric) are ordered by the best
validation loss (`SECONDARY`), then by trial order; `tune` warns about ties and restores that winner.
`trial_settings(DIR)` reads a trial back as `train` settings (`multisensory train --from-trial DIR`), and the best
model's `metrics.json` holds the settings of a `train` run that rebuilds its configuration, so a published preset's
command does.
"""

import dataclasses
import json
import math
import os
import sys

import keras
import keras_tuner

from multisensory import datasets, zoo
from multisensory.exports import export_saved_model

from . import distribute, run_folder, runs
from .metrics import MINIMISED, selection_metric, task_metrics

SECONDARY = "val_loss"
STUDY_FILE = "study.json"

TUNERS = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
          "hyperband": keras_tuner.Hyperband}


class ZooHyperModel(keras_tuner.HyperModel):
    """A zoo model's search space as a KerasTuner `HyperModel`.

    Args:
        model: str. Zoo model name.
        dataset_info: `DatasetInfo` the model is built for.
        config: dict. Fixed configuration (not searched); its `synergy` and `head` add their hyperparameters.
        precision: the dtype policy every trial's model computes in (`multisensory.zoo.precision`).
    """

    def __init__(self, model, dataset_info, config=None, precision="float32", **kwargs):
        super().__init__(name=model, **kwargs)
        self.model, self.info, self.config, self.precision = model, dataset_info, dict(config or {}), precision

    def build(self, hp):
        config, training = zoo.sample_config(self.model, hp, self.config)
        net = zoo.create(self.model, self.info, precision=self.precision, **config)
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
          project_name=None, config=None, seed=0, overwrite=False, max_epochs=10, strategy="default",
          precision="float32"):
    """A KerasTuner tuner of a zoo model (`random`, `bayesian` or `hyperband`; unknown names list the known ones).

    `max_epochs` is Hyperband's budget per trial; the other tuners run `max_trials` trials. `strategy` ("default" or
    "mirrored") trains every trial under that `tf.distribute` strategy (KerasTuner's `distribution_strategy`);
    several machines tune one study in chief/worker mode (see the module docstring), not under "multiworker".
    `precision` is the dtype policy of every trial's model (`multisensory.zoo.precision`).
    """
    if strategy == "multiworker":
        raise ValueError("A study runs on several machines in KerasTuner's chief/worker mode (KERASTUNER_TUNER_ID, "
                         "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT); --strategy multiworker is for `train`.")
    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner '{tuner}'; tuners: {', '.join(TUNERS)}.")
    _check_positive(max_trials=max_trials, max_epochs=max_epochs)
    zoo.precision.check(precision)
    if objective_name is not None:
        logged = ["loss"] + [m.name for m in task_metrics(dataset_info.task)]
        valid = [f"val_{n}" for n in logged] + logged
        if objective_name not in valid:
            raise ValueError(f"Unknown objective '{objective_name}'; the task's objectives: {', '.join(valid)}.")
    distribution = {} if strategy == "default" else {"distribution_strategy": distribute.strategy(strategy)}
    zoo.config_keys(model)  # unknown models list the known ones
    budget = {"max_epochs": max_epochs} if tuner == "hyperband" else {"max_trials": max_trials}
    return TUNERS[tuner](ZooHyperModel(model, dataset_info, config, precision), objective=objective(dataset_info.task,
                                                                                           objective_name),
                         seed=seed, directory=directory, project_name=project_name or model, overwrite=overwrite,
                         **budget, **distribution)


def tune(model, dataset, directory="studies", project_name=None, tuner_name="random", max_trials=10,
         objective_name=None, epochs=5, batch_size=32, data_dir=None, seed=0, config=None, dataset_options=None,
         noise=None, drop=(), strategy="default", overwrite=False, verbose="auto", precision="float32"):
    """Runs (or resumes) a study and writes its best model like a `train` run.

    The best trial's model is restored (not retrained) and written to `<directory>/<project>/best/`: `model.keras`,
    `metrics.json` (test metrics, the best hyperparameters and the study's settings) and `export/<model>/1/`.
    TensorBoard logs of every trial, with their hyperparameters for the HParams dashboard, go to
    `<directory>/<project>/logs/`. `noise` and `drop` apply to every split, as in `runs.train`. Returns (tuner, test
    metrics of the best model; None in a worker of a chief/worker study). `precision`: the dtype policy of every
    trial's model (`multisensory.zoo.precision`).
    """
    dataset_options = dict(dataset_options or {})
    _check_positive(epochs=epochs, batch_size=batch_size)
    zoo.precision.check(precision)
    info = datasets.info(dataset, data_dir=data_dir or os.environ.get(datasets.DATA_ENV), **dataset_options)
    project_name = project_name or f"{model}-{dataset}"
    root = os.path.join(directory, project_name)
    objective_name = objective_name or selection_metric(info.task)[0]
    settings = {"model": model, "dataset": dataset, "config": dict(config or {}), "dataset_options": dataset_options,
                "noise": noise or {}, "drop": sorted(drop), "seed": seed, "tuner": tuner_name,
                "objective": objective_name, "epochs": epochs, "batch_size": batch_size,
                **zoo.precision.recorded(precision)}
    os.makedirs(root, exist_ok=True)
    lock = ".lock" if "KERASTUNER_TUNER_ID" not in os.environ else f".lock-{os.environ['KERASTUNER_TUNER_ID']}"
    with run_folder.Lock(root, lock, holder="study", hint="choose another --project-name"):
        _record_study(root, settings, overwrite, chief=not is_worker())
        keras.utils.set_random_seed(seed)
        study = tuner(model, info, tuner_name, max_trials, objective_name, directory, project_name, config, seed,
                      overwrite, max_epochs=epochs, strategy=strategy, precision=precision)
        data = {split: datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, noise=noise,
                                     drop=drop, seed=seed, **dataset_options)
                for split in ("train", "validation", "test")}
        study.search(data["train"], validation_data=data["validation"], epochs=epochs, verbose=verbose,
                     callbacks=[keras.callbacks.TensorBoard(os.path.join(root, "logs"))])
        if is_worker():  # the chief writes the best model once every worker is done
            return study, None
        winner = ranking(study)
        if winner.tied:
            print(winner.tie_message(), file=sys.stderr)
        best = study.load_model(winner.best)
        metrics = {k: float(v) for k, v in best.evaluate(data["test"], return_dict=True, verbose=0).items()}
        out = os.path.join(root, "best")
        os.makedirs(out, exist_ok=True)
        best.save(os.path.join(out, "model.keras"))
        export = export_saved_model(best, os.path.join(out, "export"), model_name=model)
        trained = trial_settings(os.path.join(root, f"trial_{winner.best.trial_id}"))
        runs.write_json(os.path.join(out, "metrics.json"), {
            "test": metrics, "hyperparameters": winner.best.hyperparameters.values,
            "study": {**settings, "trial": winner.best.trial_id, "tied": [t.trial_id for t in winner.tied]},
            # a `train` run's settings that rebuild this configuration (`publishing.train_command`)
            "settings": {**trained, "epochs": epochs, "seed": seed, "select": "last", "patience": None,
                         "strategy": strategy, "export": export}})
        return study, metrics


def _record_study(root, settings, overwrite, chief):
    """Writes `study.json`, or refuses to resume a study recorded with other settings (see the module docstring)."""
    path = os.path.join(root, STUDY_FILE)
    settings = json.loads(json.dumps(settings))
    if not overwrite and os.path.exists(path):
        previous = runs.read_json(path)
        changed = run_folder.differences(previous, settings)
        if changed:
            raise run_folder.RunFolderError(
                f"The study in '{root}' was run with other settings: {'; '.join(changed)}. Resuming it would rank its "
                "trials on other terms: rerun it with its own settings, pass --overwrite to start over, or choose "
                "another --project-name.")
    if chief:
        runs.write_json(path, settings)


@dataclasses.dataclass
class Ranking:
    """A study's completed trials, best first (see the module docstring).

    Attributes:
        trials: list of `keras_tuner.engine.trial.Trial`, best first.
        tied: the trials whose objective equals the best's (the best included), or [] when the best is alone.
        objective: str. The objective's name.
    """

    trials: list
    tied: list
    objective: str

    @property
    def best(self):
        return self.trials[0]

    def tie_message(self):
        return (f"warning: {len(self.tied)} trials tie at the best {self.objective} ({self.best.score:.6g}): "
                f"trials {', '.join(t.trial_id for t in self.tied)}; trial {self.best.trial_id} is taken, the best "
                f"{SECONDARY} among them ({secondary_value(self.best):.6g}).")


def secondary_value(trial):
    """The trial's best validation loss (inf when it has none)."""
    if not trial.metrics.exists(SECONDARY):
        return math.inf
    value = trial.metrics.get_best_value(SECONDARY)
    return math.inf if value is None else float(value)


def ranking(study):
    """The `Ranking` of a tuner's completed trials: the objective first, ties by the best `SECONDARY`, then order."""
    objective = study.oracle.objective
    sign = 1.0 if objective.direction == "min" else -1.0
    done = [t for t in study.oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    if not done:
        raise ValueError("The study has no completed trial: every trial failed (see the errors above).")
    done.sort(key=lambda t: (sign * t.score, secondary_value(t), t.trial_id))
    tied = [t for t in done if math.isclose(t.score, done[0].score, rel_tol=1e-9, abs_tol=1e-12)]
    return Ranking(done, tied if len(tied) > 1 else [], objective.name)


def format_ranking(ranking, top=5):
    """The best `top` trials as a text table: trial, objective, `SECONDARY`, hyperparameters."""
    lines = [f"{'trial':>6s} {ranking.objective:>14s} {SECONDARY:>10s}  hyperparameters"]
    for trial in ranking.trials[:top]:
        values = ", ".join(f"{k}={v}" for k, v in trial.hyperparameters.values.items())
        mark = " (tied)" if trial in ranking.tied else ""
        lines.append(f"{trial.trial_id:>6s} {trial.score:>14.6g} {secondary_value(trial):>10.4g}  {values}{mark}")
    return "\n".join(lines)


def trial_settings(trial_dir):
    """A trial of a study as the settings of a `train` run: {model, dataset, config, learning_rate, batch_size,
    noise, drop, dataset_options} (`multisensory train --from-trial DIR`)."""
    trial_file, study_file = os.path.join(trial_dir, "trial.json"), os.path.join(trial_dir, os.pardir, STUDY_FILE)
    for path, what in ((trial_file, "a KerasTuner trial folder (<directory>/<project>/trial_N/trial.json)"),
                       (study_file, f"the study's {STUDY_FILE} beside the trial folders (written by `tune`)")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"'{path}' is missing: --from-trial needs {what}.")
    trial, study = runs.read_json(trial_file), runs.read_json(study_file)
    hp = keras_tuner.HyperParameters.from_config(trial["hyperparameters"])
    config, training = zoo.sample_config(study["model"], hp, study["config"])
    return {"model": study["model"], "dataset": study["dataset"], "config": config,
            "learning_rate": float(training["learning_rate"]),
            "batch_size": int(training.get("batch_size", study["batch_size"])), "noise": study["noise"],
            "drop": study["drop"], "dataset_options": study["dataset_options"],
            **zoo.precision.recorded(study.get("precision", "float32"))}
