"""Robustness evaluation: SNR grids, dropped modalities and corruption curves, written as CSV and PNG.

- `snr_grid` (Barnum et al. 2020, Figs. 1 and 2): a metric on a grid of white-noise SNRs of two modalities
  (rows: the first modality, columns: the second; "original" is no noise). `grid_difference` subtracts two grids
  (e.g. two fusion depths) for a difference heatmap.
- `dropped_modalities` (Shankar 2022, Table 4): metrics with no modality, each modality, and (with three or more
  modalities) each pair of modalities zeroed at test time.
- `corruption_curves`: a metric against severity for each corruption that applies to each modality, with
  MultiBench's robustness numbers (Liang et al. 2021, section 3): *relative robustness* is the area under the
  metric-against-severity curve (trapezoid rule over severities in [0, 1]); *effective robustness* is
  sum_s [f(s) - (g(s) + f(0) - g(0))], how far the curve stays above a reference model's curve g (MultiBench uses
  late fusion) shifted to the same clean score. MultiBench further min-max normalises both across the methods it
  compares; the raw values are reported here.

Every evaluation reads the same split with the same seed and batch size, so conditions differ only in the noise or
corruption applied. Plots can also be logged to TensorBoard as images (`log_images`).
"""

import csv
import itertools
import math

import matplotlib
import numpy as np
import tensorflow as tf

from multisensory.datasets.corruptions import CORRUPTIONS

from .runs import evaluate

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_SNRS = (math.inf, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625)
DEFAULT_SEVERITIES = tuple(i / 10 for i in range(11))
APPLICABLE = {"image": ("salt_and_pepper", "gaussian_blur", "occlusion"),
              "spectrogram": ("time_mask", "frequency_mask", "timestep_drop"),
              "sequence": ("time_mask", "timestep_drop"), "text": ("time_mask", "timestep_drop")}


def default_metric(model):
    return "accuracy" if model.task.type == "classification" else "mae"


def snr_label(snr):
    return "original" if math.isinf(snr) else f"{snr:g}"


def snr_grid(model, dataset, snrs=DEFAULT_SNRS, modalities=None, metric=None, split="test", data_dir=None,
             batch_size=32, seed=0, dataset_options=None):
    """The metric for every pair of SNRs of two modalities.

    Returns:
        dict with `rows` (modality, snrs), `cols` (modality, snrs), `metric` and `values` (len(snrs) x len(snrs)).
    """
    names = modalities or model.modality_names[:2]
    if len(names) != 2:
        raise ValueError(f"An SNR grid needs two modalities; got {list(names)}.")
    metric = metric or default_metric(model)
    values = np.zeros((len(snrs), len(snrs)))
    for (i, row), (j, col) in itertools.product(enumerate(snrs), enumerate(snrs)):
        values[i, j] = evaluate(model, dataset, data_dir, split, batch_size, seed=seed,
                                dataset_options=dataset_options, noise={names[0]: row, names[1]: col})[metric]
    return {"rows": (names[0], list(snrs)), "cols": (names[1], list(snrs)), "metric": metric, "values": values}


def grid_difference(a, b):
    """Grid a minus grid b (same axes), e.g. one fusion depth against another."""
    if a["rows"] != b["rows"] or a["cols"] != b["cols"]:
        raise ValueError("The two grids have different axes.")
    return {**a, "metric": f"{a['metric']} difference", "values": a["values"] - b["values"]}


def write_grid(grid, path):
    """Writes `<path>.csv` and a heatmap `<path>.png`; returns both paths."""
    (row_name, rows), (col_name, cols) = grid["rows"], grid["cols"]
    with open(f"{path}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"{row_name}_snr \\ {col_name}_snr"] + [snr_label(c) for c in cols])
        for row, values in zip(rows, grid["values"]):
            writer.writerow([snr_label(row)] + [f"{v:.6f}" for v in values])
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(cols), 0.8 + 0.6 * len(rows)))
    diverging = "difference" in grid["metric"]
    limit = np.abs(grid["values"]).max() or 1.0
    image = ax.imshow(grid["values"], cmap="RdBu" if diverging else "viridis",
                      vmin=-limit if diverging else None, vmax=limit if diverging else None)
    for (i, j), v in np.ndenumerate(grid["values"]):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="black" if diverging else ("white" if v < grid["values"].mean() else "black"))
    ax.set_xticks(range(len(cols)), [snr_label(c) for c in cols], rotation=45)
    ax.set_yticks(range(len(rows)), [snr_label(r) for r in rows])
    ax.set_xlabel(f"{col_name} SNR")
    ax.set_ylabel(f"{row_name} SNR")
    ax.set_title(grid["metric"])
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(f"{path}.png", dpi=120)
    plt.close(fig)
    return f"{path}.csv", f"{path}.png"


def read_grid(path, metric="accuracy"):
    """Reads a grid CSV written by `write_grid`."""
    with open(path, newline="") as f:
        header, *lines = list(csv.reader(f))
    row_name, col_name = (part.strip()[:-len("_snr")] for part in header[0].split("\\"))

    def snr(label):
        return math.inf if label == "original" else float(label)

    return {"rows": (row_name, [snr(line[0]) for line in lines]), "cols": (col_name, [snr(c) for c in header[1:]]),
            "metric": metric, "values": np.array([[float(v) for v in line[1:]] for line in lines])}


def dropped_modalities(model, dataset, split="test", data_dir=None, batch_size=32, seed=0, dataset_options=None):
    """{condition: metrics} with nothing, each modality and (for three or more) each pair zeroed at test time."""
    names = model.modality_names
    conditions = [()] + [(m,) for m in names] + (list(itertools.combinations(names, 2)) if len(names) > 2 else [])
    return {"+".join(drop) or "none": evaluate(model, dataset, data_dir, split, batch_size, drop=drop, seed=seed,
                                               dataset_options=dataset_options)
            for drop in conditions}


def relative_robustness(severities, scores):
    """MultiBench's relative robustness: the area under the score-against-severity curve (trapezoid rule)."""
    s, f = np.asarray(severities, float), np.asarray(scores, float)
    return float(np.sum((f[1:] + f[:-1]) * np.diff(s) / 2))


def effective_robustness(scores, reference):
    """MultiBench's effective robustness: sum_s [f(s) - (g(s) + f(0) - g(0))] against a reference curve g."""
    f, g = np.asarray(scores, float), np.asarray(reference, float)
    return float(np.sum(f - (g + f[0] - g[0])))


def corruption_curves(model, dataset, corruptions=None, severities=DEFAULT_SEVERITIES, metric=None,
                      reference=None, split="test", data_dir=None, batch_size=32, seed=0, dataset_options=None):
    """The metric at each severity of each corruption of each modality.

    Args:
        corruptions: dict. Modality to corruption names; defaults to those applicable to each modality's kind.
        reference: dict. Another model's result of this function (same corruptions and severities), for
            effective robustness.

    Returns:
        dict with `severities`, `metric` and `curves`: {"<modality>/<corruption>": {"scores": [...],
        "relative_robustness": float, "effective_robustness": float or None}}.
    """
    metric = metric or default_metric(model)
    if corruptions is None:
        corruptions = {m.name: APPLICABLE.get(m.kind, ()) for m in model.modalities}
    curves = {}
    for modality, names in corruptions.items():
        for name in names:
            if name not in CORRUPTIONS:
                raise ValueError(f"Unknown corruption '{name}'; known corruptions: {list(CORRUPTIONS)}.")
            key = f"{modality}/{name}"
            scores = [evaluate(model, dataset, data_dir, split, batch_size, corruptions={modality: {name: s}},
                               seed=seed, dataset_options=dataset_options)[metric] for s in severities]
            ref = reference["curves"][key]["scores"] if reference else None
            curves[key] = {"scores": scores, "relative_robustness": relative_robustness(severities, scores),
                           "effective_robustness": None if ref is None else effective_robustness(scores, ref)}
    return {"severities": list(severities), "metric": metric, "curves": curves}


def write_curves(result, path):
    """Writes `<path>.csv` (one row per curve and severity, with the robustness numbers) and `<path>.png`."""
    with open(f"{path}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["modality", "corruption", "severity", result["metric"], "relative_robustness",
                         "effective_robustness"])
        for key, curve in result["curves"].items():
            modality, name = key.split("/")
            effective = "" if curve["effective_robustness"] is None else f"{curve['effective_robustness']:.6f}"
            for severity, score in zip(result["severities"], curve["scores"]):
                writer.writerow([modality, name, severity, f"{score:.6f}", f"{curve['relative_robustness']:.6f}",
                                 effective])
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, curve in result["curves"].items():
        ax.plot(result["severities"], curve["scores"], marker="o", label=key)
    ax.set_xlabel("severity")
    ax.set_ylabel(result["metric"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{path}.png", dpi=120)
    plt.close(fig)
    return f"{path}.csv", f"{path}.png"


def log_images(log_dir, images, step=0):
    """Logs PNG files {tag: path} to TensorBoard under `log_dir`."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, path in images.items():
            tf.summary.image(tag, tf.io.decode_png(tf.io.read_file(path), channels=4)[None], step=step)
    writer.flush()
