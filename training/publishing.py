"""Publishing a finished run as a preset of the pretrained zoo (`multisensory publish`).

`publish_run(run, name, root)` reads the run folder `train` wrote (`model.keras`, `metrics.json`), measures the
robustness card on the test split with the run's seed and batch size (the metrics with each modality dropped, and
an SNR grid over the first two modalities, `multisensory.training.robustness`), and writes the preset with
`multisensory.exports.publish`, its manifest holding the dataset and its `DatasetInfo`, the command that trained it,
the training settings, the test metrics and the card.
"""

import json
import math
import os

import numpy as np

from multisensory import datasets
from multisensory.exports import publish

from . import robustness, runs

CARD_SNRS = (math.inf, 1.0, 0.25)


def train_command(settings):
    """The `multisensory train` command line of a run's settings (the data directory left to
    `$MULTISENSORY_DATA`)."""
    parts = ["multisensory train", f"--model {settings['model']}", f"--dataset {settings['dataset']}",
             f"--epochs {settings['epochs']}", f"--batch-size {settings['batch_size']}", f"--seed {settings['seed']}"]
    for flag in ("noise", "dropout"):
        if settings.get(flag):
            parts.append(f"--{flag} " + ",".join(f"{m}={v:g}" for m, v in settings[flag].items()))
    if settings.get("drop"):
        parts.append("--drop " + ",".join(settings["drop"]))
    parts += [f"--config {k}={_json(v)}" for k, v in settings.get("config", {}).items()]
    parts += [f"--dataset-option {k}={_json(v)}" for k, v in settings.get("dataset_options", {}).items()]
    if settings.get("strategy", "default") != "default":
        parts.append(f"--strategy {settings['strategy']}")
    if settings.get("select", "best") != "best":
        parts.append(f"--select {settings['select']}")
    if settings.get("learning_rate") is not None:
        parts.append(f"--learning-rate {settings['learning_rate']!r}")
    if "patience" in settings:
        parts.append(f"--patience {settings['patience'] or 0}")
    if settings.get("precision", "float32") != "float32":
        parts.append(f"--precision {settings['precision']}")
    return " ".join(parts)


def _json(value):
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return f"'{text}'" if any(c in text for c in " []{}\"'") else text


def robustness_card(model, dataset, data_dir=None, batch_size=32, seed=0, dataset_options=None, snrs=CARD_SNRS):
    """{"dropped": {condition: metrics}, "snr_grid": {...}} on the test split (see the module docstring)."""
    common = dict(split="test", data_dir=data_dir, batch_size=batch_size, seed=seed, dataset_options=dataset_options)
    card = {"dropped": robustness.dropped_modalities(model, dataset, **common)}
    if len(model.modality_names) >= 2:
        grid = robustness.snr_grid(model, dataset, snrs=snrs, **common)
        values = np.asarray(grid["values"], dtype="float64")
        card["snr_grid"] = {"metric": grid["metric"], "rows": grid["rows"][0], "cols": grid["cols"][0],
                            "snrs": [robustness.snr_label(s) for s in snrs], "values": values.tolist(),
                            "mean": float(values.mean()), "worst": float(values.min())}
    return card


def publish_run(run, name, root, data_dir=None, snrs=CARD_SNRS, version=None):
    """Publishes the finished run in folder `run` as preset `name` under `root`; returns the version folder."""
    record = runs.read_json(os.path.join(run, "metrics.json"))
    settings, test = record["settings"], record["test"]
    model = runs.load_model(os.path.join(run, "model.keras"))
    dataset = settings["dataset"]
    data_dir = data_dir or os.environ.get(datasets.DATA_ENV)
    card = robustness_card(model, dataset, data_dir, settings["batch_size"], settings["seed"],
                           settings.get("dataset_options"), snrs)
    info = datasets.info(dataset, data_dir=data_dir, **settings.get("dataset_options", {}))
    manifest = {"model": settings["model"], "dataset": {"name": info.name, "info": info.get_config()},
                "command": train_command(settings), "training": settings, "metrics": {"test": test},
                "robustness": card}
    if "selection" in record:  # which epoch the published model is, and how many ran
        manifest["selection"] = record["selection"]
    return publish(model, name, root, manifest=manifest, version=version)


def preset_rows(root=None):
    """One dict per preset version under a root, from the manifests: what `multisensory zoo list` prints."""
    from multisensory.exports.presets import list_presets, manifest_of, resolve_root

    root, rows = resolve_root(root), []
    for preset, versions in list_presets(root).items():
        for version in versions:
            manifest = manifest_of(os.path.join(root, preset, str(version)))
            test = manifest.get("metrics", {}).get("test", {})
            card = manifest.get("robustness", {})
            metric = card.get("snr_grid", {}).get("metric") or ("accuracy" if "accuracy" in test else "mae")
            dropped = {c: m.get(metric) for c, m in card.get("dropped", {}).items() if c != "none"}
            clean = card.get("dropped", {}).get("none", {}).get(metric)
            grid = card.get("snr_grid")
            rows.append({"preset": preset, "version": version, "model": manifest.get("model"),
                         "dataset": manifest.get("dataset", {}).get("name"), "metric": metric,
                         "test": test.get(metric), "auc": test.get("auc"), "clean": clean,
                         "parameters": manifest.get("parameters"),
                         "dropped": dropped,
                         "snr_grid": None if grid is None else f"mean {grid['mean']:.3f}, worst {grid['worst']:.3f}"
                                                                 f" (SNR {', '.join(grid['snrs'])})",
                         "epochs": _epochs(manifest)})
    return rows


def _epochs(manifest):
    """"selected / run / asked" epochs of a manifest (the asked number alone for one without a selection)."""
    asked, selection = manifest.get("training", {}).get("epochs"), manifest.get("selection")
    return str(asked) if not selection else f"{selection['epoch']} / {selection['epochs_run']} / {asked}"


def format_rows(rows, markdown=False):
    """The rows of `preset_rows` as a text or Markdown table. The test metric is the run's (with its training noise,
    if any); "clean" and the dropped-modality metrics come from the robustness card, without noise."""
    def number(value):
        return "-" if value is None else f"{value:.4f}"

    header = ["preset", "v", "model", "dataset", "test metric (run's noise)", "AUC", "clean", "params",
              "one modality dropped (clean)", "SNR grid", "epochs (selected / run / asked)"]
    lines = [[r["preset"], str(r["version"]), r["model"] or "-", r["dataset"] or "-",
              f"{r['metric']} {number(r['test'])}", number(r["auc"]), number(r["clean"]), f"{r['parameters']:,}",
              ", ".join(f"-{c}: {number(v)}" for c, v in r["dropped"].items()) or "-", r["snr_grid"] or "-",
              r["epochs"]] for r in rows]
    if markdown:
        return "\n".join("| " + " | ".join(line) + " |" for line in [header, ["---"] * len(header)] + lines)
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header] + lines)
