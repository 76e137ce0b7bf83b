"""`multisensory benchmark`: which fusion for my data, and is the difference real.

`benchmark(dataset, models, out)` trains every model with every seed as ordinary run folders
(`<out>/runs/<label>/seed-<s>/`, `runs.train`: the epoch selected on the task's main validation metric), optionally
after a KerasTuner study per model (`tune_trials`: the seeds then run at the best trial's configuration, learning rate
and batch size, `tuning.trial_settings`), and writes one report from whatever runs are finished:

- per model: the test metric as mean +- std and a 95% interval over seeds (`statistics.summary`); parameters;
  training seconds per epoch and examples/s; the export's latency at batch 1 and 32 (median of timed calls after a
  warm-up); robustness on the test split of every seed: the metric with each modality dropped (its worst) and over an
  SNR grid of the first two modalities (its mean: the area under the metric-vs-SNR surface per cell), each averaged
  over seeds;
- comparisons of each model with the best (by mean) and with the baseline (`baseline`, default the first model): a
  paired t-test over seeds (runs share their seeds, so their data order and noise) with 3 seeds or more, else a paired
  bootstrap over the test examples of seed 0's runs (`statistics`); "not distinguishable at 5%" where p >= 0.05, and
  models not distinguishable from the best share its rank;
- `report.md` (a table to paste), `report.json` (every number), PNG plots (the metric with its interval per model, the
  metric against SNR, the metric against training cost) also logged to TensorBoard under `<out>/logs`.

Rerunning the same benchmark reuses finished runs (same settings) and resumes an interrupted one; `overwrite=True`
starts every run over. `worker=(i, n)` takes every n-th run from the i-th, so several processes or machines sharing
`out` finish one benchmark (each run folder is locked while trained); any of them writes the report of what is done.

An entry of `models` is a zoo model's name, or `label=model` to compare configurations of one model (e.g.
`add=higgs_mlp` and `mul=higgs_mlp` with `config={"add": {"variant": "add"}, "mul": {"variant": "mul"}}`); reports,
folders and configurations are keyed by the label.
"""

import math
import os
import time

import keras
import numpy as np

from multisensory import datasets
from multisensory.zoo.precision import check as check_precision

from . import atomic, publishing, runs, statistics
from .metrics import selection_metric

CARD_SNRS = (math.inf, 1.0, 0.25)
TIMING = "timing.json"


class EpochTimes(keras.callbacks.Callback):
    """Records every epoch's seconds and examples/s (the `examples_per_s` `Throughput` logs)."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"seconds": time.perf_counter() - self.start,
                            "examples_per_s": float((logs or {}).get("examples_per_s", 0.0))})


def entries(models):
    """{label: zoo model} of `models` entries ("model" or "label=model")."""
    parsed = {}
    for entry in models:
        label, sep, model = entry.partition("=")
        label, model = label.strip(), (model if sep else label).strip()
        if not label or not model or label in parsed:
            raise ValueError(f"Models must be names or label=model entries whose labels do not repeat, got "
                             f"{list(models)}.")
        parsed[label] = model
    return parsed


def plan(models, seeds):
    """[(model, seed)] in the order runs are taken (seed-major, so that early reports compare every model)."""
    return [(model, seed) for seed in seeds for model in models]


def run_folder(out, model, seed):
    return os.path.join(out, "runs", model, f"seed-{seed}")


def _model_settings(label, model, dataset, out, config, tune_trials, tune_epochs, common, verbose):
    """(config, learning_rate, batch_size) a model's seeds run with: the given ones, or a study's best trial's."""
    if not tune_trials:
        return dict(config), common.get("learning_rate"), common.get("batch_size")
    from . import tuning

    tuning.tune(model, dataset, directory=os.path.join(out, "studies"), project_name=label, max_trials=tune_trials,
                epochs=tune_epochs, batch_size=common.get("batch_size") or 32, data_dir=common.get("data_dir"), seed=0,
                config=config, dataset_options=common.get("dataset_options"), noise=common.get("noise"),
                verbose=verbose, precision=common["precision"])
    # the `train` settings of the best trial, as `tune` wrote them beside its best model
    best = runs.read_json(os.path.join(out, "studies", label, "best", "metrics.json"))["settings"]
    return best["config"], best["learning_rate"], best["batch_size"]


def benchmark(dataset, models, out, seeds=(0, 1, 2), epochs=5, config=None, tune_trials=0, tune_epochs=None,
              noise=None, baseline=None, data_dir=None, dataset_options=None, batch_size=None, learning_rate=None,
              patience="recipe", worker=(0, 1), overwrite=False, snrs=CARD_SNRS, verbose="auto", precision="float32"):
    """Runs (or resumes) a benchmark and returns its report (a dict; see the module docstring).

    Args:
        dataset: str. A dataset name or folder.
        models: list of str. Zoo models, or `label=model` entries (see the module docstring).
        out: str. The benchmark's folder.
        seeds: the seeds every model runs with (the same for all: paired runs).
        config: dict {label: {key: value}} of model configurations.
        tune_trials: int. Trials of a study per model before the seeds (0: none); `tune_epochs` epochs per trial
            (default `epochs`).
        baseline: str. The model every other is compared with (default the first).
        worker: (i, n). This process trains runs i, i + n, i + 2n, ... of `plan(models, seeds)`.
        Other arguments as `runs.train`'s.
    """
    zoo_models, seeds = entries(models), [int(s) for s in seeds]
    check_precision(precision)
    models = list(zoo_models)
    if not models:
        raise ValueError("A benchmark needs at least one model.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Seeds must not repeat, got {seeds}.")
    unknown = sorted(set(config or {}) - set(models))
    if unknown:
        raise ValueError(f"Configurations for {unknown}, which are not among the models {models}.")
    baseline = baseline or models[0]
    if baseline not in models:
        raise ValueError(f"The baseline '{baseline}' is not one of the models {models}.")
    index, count = worker
    if not 0 <= index < count:
        raise ValueError(f"worker must be i/n with 0 <= i < n, got {index}/{count}.")
    config = {m: dict((config or {}).get(m, {})) for m in models}
    common = {"data_dir": data_dir, "dataset_options": dict(dataset_options or {}), "noise": dict(noise or {}),
              "batch_size": batch_size, "learning_rate": learning_rate, "precision": precision}
    os.makedirs(out, exist_ok=True)
    work = plan(models, seeds)
    tuned = {}
    for number, (model, seed) in enumerate(work, 1):
        if (number - 1) % count != index:
            continue
        if model not in tuned:
            tuned[model] = _model_settings(model, zoo_models[model], dataset, out, config[model], tune_trials,
                                           tune_epochs or epochs, common, verbose)
        model_config, rate, batch = tuned[model]
        folder = run_folder(out, model, seed)
        print(f"run {number}/{len(work)}: {model} seed {seed}", flush=True)
        times = EpochTimes()
        runs.train(zoo_models[model], dataset, folder, data_dir=data_dir, epochs=epochs, batch_size=batch, noise=noise,
                   seed=seed, config=model_config, dataset_options=dataset_options, callbacks=[times],
                   existing="overwrite" if overwrite else "reuse", verbose=verbose, patience=patience,
                   learning_rate=rate, precision=precision)
        if times.epochs:  # trained now (a reused run keeps the timing it recorded)
            atomic.write_json(os.path.join(folder, TIMING), {"epochs": times.epochs})
        _robustness(folder, dataset, data_dir, snrs)
    result = report(out, dataset, models, seeds, baseline, data_dir)
    print(f"report: {os.path.join(out, 'report.md')} ({result['finished']} of {len(work)} runs finished)")
    return result


def _robustness(folder, dataset, data_dir, snrs):
    """The run's robustness card (`publishing.robustness_card`), measured once and kept in the run folder."""
    path = os.path.join(folder, "robustness.json")
    if os.path.exists(path):
        return
    record = runs.read_json(os.path.join(folder, "metrics.json"))["settings"]
    model = runs.load_model(os.path.join(folder, "model.keras"))
    card = publishing.robustness_card(model, dataset, data_dir, record["batch_size"], record["seed"],
                                      record.get("dataset_options"), snrs)
    atomic.write_json(path, card)


def _latency(export, features, repeats=20):
    """Median seconds of the export's `serving_default` at the batch of `features` (after 3 warm-up calls)."""
    import tensorflow as tf

    function = tf.saved_model.load(export).signatures["serving_default"]
    inputs = {k: tf.constant(v) for k, v in features.items()}
    for _ in range(3):
        function(**inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(**inputs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _test_batch(dataset, data_dir, options, size):
    x, _ = next(iter(datasets.load(dataset, "test", data_dir=data_dir, batch_size=size, shuffle=False, **options)))
    return {k: v.numpy() for k, v in x.items()}


def _scores(folder, dataset, data_dir):
    """Per-example scores of a run's model on its test split (1 for a right class, minus the absolute error of a
    regression), in the split's order: what the paired bootstrap resamples."""
    record = runs.read_json(os.path.join(folder, "metrics.json"))["settings"]
    model = runs.load_model(os.path.join(folder, "model.keras"))
    data = datasets.load(dataset, "test", data_dir=data_dir, batch_size=record["batch_size"], shuffle=False,
                         noise=record["noise"], seed=record["seed"], **record["dataset_options"])
    labels = np.concatenate([y.numpy() for _, y in data])
    predictions = model.predict(data, verbose=0)
    if model.task.type == "classification":
        return (predictions.argmax(-1) == labels).astype("float64")
    return -np.abs(predictions.reshape(-1) - labels)


def _finished(out, model, seeds):
    return {s: run_folder(out, model, s) for s in seeds
            if os.path.exists(os.path.join(run_folder(out, model, s), "metrics.json"))}


def report(out, dataset, models, seeds, baseline=None, data_dir=None):
    """The report of the finished runs under `out` (see the module docstring): writes report.json, report.md and
    the plots, and returns the report."""
    baseline = baseline or models[0]
    task = datasets.info(dataset, data_dir=data_dir).task
    monitor, mode = selection_metric(task)
    metric, sign = monitor[len("val_"):], 1.0 if mode == "max" else -1.0
    per_model, values = {}, {}
    for model in models:
        finished = _finished(out, model, seeds)
        if not finished:
            continue
        records = {s: runs.read_json(os.path.join(f, "metrics.json")) for s, f in finished.items()}
        values[model] = {s: r["test"][metric] for s, r in records.items()}
        first = finished[min(finished)]
        settings = records[min(finished)]["settings"]
        net = runs.load_model(os.path.join(first, "model.keras"))
        options = settings.get("dataset_options", {})
        timing = [runs.read_json(os.path.join(f, TIMING))["epochs"] for f in finished.values()
                  if os.path.exists(os.path.join(f, TIMING))]
        epochs = [e for run in timing for e in run]
        cards = [runs.read_json(os.path.join(f, "robustness.json")) for f in finished.values()
                 if os.path.exists(os.path.join(f, "robustness.json"))]
        export = settings.get("export")
        per_model[model] = {
            "metric": statistics.summary(list(values[model].values())), "seeds": sorted(values[model]),
            "test": {s: r["test"] for s, r in records.items()},
            "selected_epochs": {s: (r.get("selection") or {}).get("epoch") for s, r in records.items()},
            "parameters": int(net.count_params()),
            "seconds_per_epoch": float(np.mean([e["seconds"] for e in epochs])) if epochs else None,
            "examples_per_s": float(np.mean([e["examples_per_s"] for e in epochs])) if epochs else None,
            "latency_ms": {str(b): 1000 * _latency(export, _test_batch(dataset, data_dir, options, b))
                           for b in (1, 32)} if export and os.path.isdir(export) else None,
            "robustness": _robustness_summary(cards, metric),
        }
    if not per_model:
        raise ValueError(f"No finished run under '{out}' yet.")
    ranked = sorted(per_model, key=lambda m: -sign * per_model[m]["metric"]["mean"])
    best = ranked[0]
    for model in per_model:
        per_model[model]["against_best"] = _compare(out, dataset, data_dir, model, best, values, sign)
        per_model[model]["against_baseline"] = (_compare(out, dataset, data_dir, model, baseline, values, sign)
                                                if baseline in per_model else None)
    for position, model in enumerate(ranked, 1):  # models not distinguishable from the best share its rank
        against = per_model[model]["against_best"]
        tied = model == best or (against is not None and against["verdict"].startswith("not distinguishable"))
        per_model[model]["rank"] = 1 if tied else position
    result = {"dataset": dataset, "metric": metric, "mode": mode, "seeds": list(seeds), "baseline": baseline,
              "best": best, "models": per_model, "order": ranked,
              "finished": sum(len(per_model[m]["seeds"]) for m in per_model)}
    atomic.write_json(os.path.join(out, "report.json"), result)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(format_report(result))
    _plots(out, result)
    return result


def _robustness_summary(cards, metric):
    if not cards:
        return None
    worst = [min(c[metric] for k, c in card["dropped"].items() if k != "none") for card in cards
             if len(card["dropped"]) > 1]
    grids = [card["snr_grid"] for card in cards if "snr_grid" in card]
    return {"dropped_worst": float(np.mean(worst)) if worst else None,
            "snr_mean": float(np.mean([g["mean"] for g in grids])) if grids else None,
            # the metric with both modalities at each SNR (the grid's diagonal), averaged over seeds
            "snr_curve": {"snrs": grids[0]["snrs"], "values": np.mean([np.diag(g["values"]) for g in grids],
                                                                      axis=0).tolist()} if grids else None}


def _compare(out, dataset, data_dir, model, other, values, sign):
    """`model` against `other`: a paired t-test over their common seeds (3 or more), else a paired bootstrap over the
    test examples of their first common seed; the verdict is in the metric's better direction."""
    if model == other:
        return None
    common = sorted(set(values[model]) & set(values[other]))
    if not common:
        return None
    if len(common) >= 3:
        test = statistics.paired_t([values[model][s] for s in common], [values[other][s] for s in common])
    else:
        seed = common[0]
        test = statistics.paired_bootstrap(_scores(run_folder(out, model, seed), dataset, data_dir),
                                           _scores(run_folder(out, other, seed), dataset, data_dir))
        test["metric_difference"] = values[model][seed] - values[other][seed]
    difference = test.get("metric_difference", test["difference"])
    test["verdict"] = statistics.verdict(test["p"], sign * difference)
    test["against"] = other
    return test


def _number(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(result):
    """The Markdown report: one row per model, best first."""
    metric = result["metric"]
    lines = [f"# Benchmark on {result['dataset']}: test {metric} over seeds {result['seeds']}", "",
             f"Mean +- std over seeds, the 95% interval of the mean (Student's t), and each model against the best "
             f"({result['best']}) and the baseline ({result['baseline']}): paired t-test over seeds with 3 or more, "
             "else a paired bootstrap over the test examples of one seed; p >= 0.05 is reported as not "
             "distinguishable, and such models share the best's rank.", "",
             f"| rank | model | {metric} | 95% interval | seeds | params | s/epoch | ex/s | latency b1 / b32 ms "
             "| worst dropped | SNR-grid mean | vs best | vs baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in result["order"]:
        row = result["models"][model]
        summary, robust = row["metric"], row["robustness"] or {}
        spread = f"{summary['mean']:.4f} +- {summary['std']:.4f}" if summary["std"] is not None else \
            f"{summary['mean']:.4f}"
        interval = "-" if summary["interval"] is None else \
            f"[{summary['interval'][0]:.4f}, {summary['interval'][1]:.4f}]"
        latency = "-" if not row["latency_ms"] else \
            f"{row['latency_ms']['1']:.2f} / {row['latency_ms']['32']:.2f}"

        def versus(test):
            return "-" if test is None else f"{test['verdict']} (p={test['p']:.3f})"

        lines.append(f"| {row['rank']} | {model} | {spread} | {interval} | {summary['n']} | {row['parameters']:,} | "
                     f"{_number(row['seconds_per_epoch'], 2)} | {_number(row['examples_per_s'], 0)} | {latency} | "
                     f"{_number(robust.get('dropped_worst'))} | {_number(robust.get('snr_mean'))} | "
                     f"{versus(row['against_best'])} | {versus(row['against_baseline'])} |")
    return "\n".join(lines) + "\n"


def _plots(out, result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .robustness import log_images

    metric, order, models = result["metric"], result["order"], result["models"]
    files = {}
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(order), 3.2))
    means = [models[m]["metric"]["mean"] for m in order]
    errors = [[0 if models[m]["metric"]["interval"] is None else models[m]["metric"]["mean"] -
               models[m]["metric"]["interval"][0] for m in order]] * 2
    ax.bar(range(len(order)), means, yerr=errors, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_ylabel(f"test {metric} (95% interval)")
    fig.tight_layout()
    files["metric"] = os.path.join(out, "metric.png")
    fig.savefig(files["metric"], dpi=110)
    plt.close(fig)
    curves = {m: models[m]["robustness"]["snr_curve"] for m in order
              if models[m]["robustness"] and models[m]["robustness"]["snr_curve"]}
    if curves:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for model, curve in curves.items():
            ax.plot(range(len(curve["snrs"])), curve["values"], marker="o", label=model)
        ax.set_xticks(range(len(curve["snrs"])), curve["snrs"])
        ax.set_xlabel("SNR of both modalities")
        ax.set_ylabel(f"test {metric}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        files["robustness"] = os.path.join(out, "robustness.png")
        fig.savefig(files["robustness"], dpi=110)
        plt.close(fig)
    costs = {m: models[m]["seconds_per_epoch"] for m in order if models[m]["seconds_per_epoch"]}
    if costs:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for model, cost in costs.items():
            ax.scatter(cost, models[model]["metric"]["mean"])
            ax.annotate(model, (cost, models[model]["metric"]["mean"]), fontsize=7)
        ax.set_xlabel("training seconds per epoch")
        ax.set_ylabel(f"test {metric}")
        fig.tight_layout()
        files["cost"] = os.path.join(out, "cost.png")
        fig.savefig(files["cost"], dpi=110)
        plt.close(fig)
    log_images(os.path.join(out, "logs"), files)
    return files
