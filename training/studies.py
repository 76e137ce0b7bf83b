"""Studies that reproduce a paper's figure end to end: `multisensory study <name>`.

`fusion_depth` (Barnum, Talukder & Yue 2020, Fig. 1): train `clstm_av` at the three fusion depths on `av_mnist`
with training noise at audio SNR 0.5 and image SNR 0.25, evaluate each on an image x audio SNR grid, and write
the accuracy heatmaps and the differences initial minus second and initial minus fc.

`synergy_dropped` (Shankar, "Multimodal fusion via cortical network inspired losses", Table 4): train each base
model with and without the synergy regulariser, select each run's epoch on the best validation task metric (its
`best.keras`: val_mae for sentiment scores, not val_loss, which includes beta L_reg), evaluate the selected model
with modalities zeroed at test time (on three modalities every one and every pair, which includes Table 4's T, T+V
and T+A), and write a table per reported metric: the task's main one and Acc-2 (has-0 and non-0), which the paper
reports.

At the paper's settings (64 filters, 90 audio frames, 87,516 training pairs) one training step costs about 94
GFLOP per example, more than 12 hours per epoch on 2 CPU cores; the arguments shrink it (fewer filters, the last
`max_frames` frames, fewer pairs, a smaller grid), and `study.json` records the settings next to the results.

A rerun of a study with the same arguments reuses the runs it finished and resumes the one it was interrupted in.
"""

import csv
import math
import os

from multisensory import zoo

from . import robustness, runs
from .synergy import SynergyConfig

FUSIONS = ("initial", "second", "fc")
TRAINING_NOISE = {"audio": 0.5, "image": 0.25}


def fusion_depth(out, data_dir=None, epochs=10, batch_size=32, train_pairs=None, test_pairs=None, filters=64,
                 max_frames=None, snrs=robustness.DEFAULT_SNRS, seed=0, verbose="auto"):
    """Runs the study; returns {fusion: test accuracy at the training noise} and writes into `out`:
    `<fusion>/` training runs, `<fusion>_snr_grid.{csv,png}`, `initial_minus_{second,fc}.{csv,png}`, `study.json`.
    """
    os.makedirs(out, exist_ok=True)
    config = {"filters": filters, "max_frames": max_frames}
    grids, accuracy = {}, {}
    for fusion in FUSIONS:
        metrics = runs.train("clstm_av", "av_mnist", os.path.join(out, fusion), data_dir=data_dir, epochs=epochs,
                             batch_size=batch_size, noise=TRAINING_NOISE, seed=seed,
                             config={"fusion": fusion, **config},
                             dataset_options={"num_pairs": train_pairs} if train_pairs else {}, existing="reuse",
                             verbose=verbose)
        accuracy[fusion] = metrics["accuracy"]
        model = runs.load_model(os.path.join(out, fusion, "model.keras"))
        grids[fusion] = robustness.snr_grid(model, "av_mnist", snrs=snrs, modalities=("image", "audio"),
                                            data_dir=data_dir, batch_size=batch_size, seed=seed,
                                            dataset_options={"num_pairs": test_pairs} if test_pairs else None)
        robustness.write_grid(grids[fusion], os.path.join(out, f"{fusion}_snr_grid"))
    for other in ("second", "fc"):
        robustness.write_grid(robustness.grid_difference(grids["initial"], grids[other]),
                              os.path.join(out, f"initial_minus_{other}"))
    settings = {"epochs": epochs, "batch_size": batch_size, "train_pairs": train_pairs or 87_516,
                "test_pairs": test_pairs or 10_939, "filters": filters, "max_frames": max_frames or 90,
                "snrs": [robustness.snr_label(s) for s in snrs], "training_noise": TRAINING_NOISE, "seed": seed}
    runs.write_json(os.path.join(out, "study.json"), {
        "study": "fusion_depth", "test_accuracy_at_training_noise": accuracy,
        "grid_mean_accuracy": {k: float(g["values"].mean()) for k, g in grids.items()},
        "grids": {k: {"rows": settings["snrs"], "cols": settings["snrs"], "values": g["values"].tolist()}
                  for k, g in grids.items()}, "settings": settings})
    return accuracy


def fusion_depth_seeds(out, seeds, **kwargs):
    """`fusion_depth` once per seed (into `<out>/seed-<s>/`, reused when finished), then a summary over the seeds,
    returned and written to `summary.json`: per fusion depth the test accuracy at the training noise and the grid's
    mean accuracy (mean, std, 95% interval: `statistics.summary`); initial against second and against fc, the paired
    t over seeds of both (`statistics.paired_t`, with its verdict), and per grid cell the mean difference and the
    seeds in which it is positive; `initial_minus_<other>_mean.{csv,png}` hold the mean difference grids."""
    import numpy as np

    from . import statistics

    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"A study over seeds needs two or more different seeds, got {seeds}.")
    reports = []
    for seed in seeds:
        fusion_depth(os.path.join(out, f"seed-{seed}"), seed=seed, **kwargs)
        reports.append(runs.read_json(os.path.join(out, f"seed-{seed}", "study.json")))
    accuracy = {f: [r["test_accuracy_at_training_noise"][f] for r in reports] for f in FUSIONS}
    grid_mean = {f: [r["grid_mean_accuracy"][f] for r in reports] for f in FUSIONS}
    values = {f: np.array([r["grids"][f]["values"] for r in reports]) for f in FUSIONS}  # (seeds, rows, cols)
    labels = reports[0]["settings"]["snrs"]  # image (rows) and audio (columns) SNRs
    snrs = [math.inf if label == "original" else float(label) for label in labels]
    summary = {"seeds": seeds, "settings": {k: v for k, v in reports[0]["settings"].items() if k != "seed"},
               "accuracy": {f: statistics.summary(v) for f, v in accuracy.items()},
               "grid_mean": {f: statistics.summary(v) for f, v in grid_mean.items()}, "comparisons": {}}
    for other in ("second", "fc"):
        tests = {name: statistics.paired_t(per["initial"], per[other])
                 for name, per in (("accuracy", accuracy), ("grid_mean", grid_mean))}
        for test in tests.values():
            test["verdict"] = statistics.verdict(test["p"], test["difference"])
        difference = values["initial"] - values[other]
        summary["comparisons"][f"initial_minus_{other}"] = {
            **tests, "cells": {"snrs": labels, "mean": difference.mean(0).tolist(),
                               "positive_seeds": (difference > 0).sum(0).tolist()}}
        robustness.write_grid({"metric": "accuracy difference", "rows": ("image", snrs), "cols": ("audio", snrs),
                               "values": difference.mean(0)},
                              os.path.join(out, f"initial_minus_{other}_mean"))
    runs.write_json(os.path.join(out, "summary.json"), summary)
    return summary


SYNERGY_MODELS = ("ef_lstm", "tfn", "lmf", "mfn")


def synergy_dropped(out, dataset, models=SYNERGY_MODELS, synergy=None, data_dir=None, epochs=10, batch_size=32,
                    seed=0, metrics=None, command=None, verbose="auto"):
    """Runs the study; returns {run: {condition: metrics}} and writes into `out`: `<model>[-synergy]/` training runs,
    `dropped.json`, `dropped.csv` and `report.md` (a table per name in `metrics`, by default the task's first
    metric and the Acc-2 metrics it has, with the command that produced them).

    Args:
        models: zoo names; each must accept the dataset (ef_lstm and mfn need aligned sequence modalities).
        synergy: `SynergyConfig` (or config) of the regularised runs; default `SynergyConfig()`.
        command: str. The command line to record in the report.
    """
    from multisensory import datasets

    unknown = [m for m in models if m not in zoo.list_models()]
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown}. Available models: {', '.join(zoo.list_models())}.")
    os.makedirs(out, exist_ok=True)
    synergy = SynergyConfig.from_config(synergy or {})
    task = datasets.info(dataset, data_dir=data_dir or os.environ.get(datasets.DATA_ENV)).task
    metrics = list(metrics or [task.metrics[0]] + [m for m in ("acc2_has0", "acc2_non0") if m in task.metrics])
    results = {}
    for model in models:
        for run, config in ((model, {}), (f"{model}-synergy", {"synergy": synergy.get_config()})):
            runs.train(model, dataset, os.path.join(out, run), data_dir=data_dir, epochs=epochs,
                       batch_size=batch_size, seed=seed, config=config, export=False, existing="reuse",
                       verbose=verbose)
            selected = runs.load_model(os.path.join(out, run, "best.keras"))
            results[run] = robustness.dropped_modalities(selected, dataset, data_dir=data_dir,
                                                         batch_size=batch_size, seed=seed)
    conditions = list(next(iter(results.values())))
    runs.write_json(os.path.join(out, "dropped.json"), {
        "study": "synergy_dropped", "results": results,
        "settings": {"dataset": dataset, "models": list(models), "synergy": synergy.get_config(), "epochs": epochs,
                     "batch_size": batch_size, "seed": seed, "metrics": metrics,
                     "selection": "best validation task metric (best.keras)"}})
    with open(os.path.join(out, "dropped.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "metric"] + [f"dropped {c}" for c in conditions])
        writer.writerows([run, metric] + [f"{r[c][metric]:.4f}" for c in conditions]
                         for metric in metrics for run, r in results.items())
    lines = [f"# Dropped modalities with and without synergy: {dataset}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"{epochs} epochs, batch {batch_size}, seed {seed}; each run's epoch selected on its best validation "
              f"task metric; synergy: `{synergy!r}`."]
    for metric in metrics:
        lines += ["", f"Test {metric}:", "", "| run | " + " | ".join(f"dropped {c}" for c in conditions) + " |",
                  "|---|" + "---|" * len(conditions)]
        lines += [f"| {run} | " + " | ".join(f"{r[c][metric]:.4f}" for c in conditions) + " |"
                  for run, r in results.items()]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return results
