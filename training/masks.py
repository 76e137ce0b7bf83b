"""MMLatch's top-down masks as a picture (Paraskevopoulos et al. 2022, Fig. 2): the average mask value of every
input feature, per class (the label, or for regression the sentiment rounded to an integer within the task's
range), over the non-padding steps of a split. `multisensory evaluate --robustness masks` writes them.
"""

import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from multisensory import datasets  # noqa: E402
from multisensory.zoo.mmlatch.sequences import masked_mean  # noqa: E402


def _classes(model, labels):
    labels = np.asarray(labels)
    if model.task.type == "classification":
        return labels.astype(int).reshape(-1)
    low, high = model.task.value_range or (-np.inf, np.inf)
    return np.clip(np.round(labels.reshape(-1)), low, high).astype(int)


def average_masks(model, dataset, split="test", data_dir=None, batch_size=32, seed=0, dataset_options=None):
    """{modality: {"classes": [c, ...], "values": (classes, D_m) array}} for a model whose outputs carry "masks"."""
    data = datasets.load(dataset, split, data_dir=data_dir, batch_size=batch_size, seed=seed, shuffle=False,
                         **(dataset_options or {}))
    means, classes = {}, []
    for x, y in data:
        outputs = model(x, return_outputs=True)
        if "masks" not in outputs:
            raise ValueError(f"Model '{model.name}' returns no top-down masks (an mmlatch model with feedback does).")
        _, padding = model.sequence_views(x)
        classes.append(_classes(model, y))
        for m, mask in outputs["masks"].items():
            means.setdefault(m, []).append(np.asarray(masked_mean(mask, padding[m])))
    classes = np.concatenate(classes)
    present = sorted(int(c) for c in np.unique(classes))
    return {m: {"classes": present,
                "values": np.stack([np.concatenate(parts)[classes == c].mean(0) for c in present])}
            for m, parts in means.items()}


def write_masks(result, out):
    """Writes `<out>/masks_<modality>.{csv,png}` (rows: classes, columns: features); returns the paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for m, table in result.items():
        base = os.path.join(out, f"masks_{m}")
        with open(f"{base}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class \\ feature"] + list(range(table["values"].shape[1])))
            writer.writerows([c] + [f"{v:.6f}" for v in row] for c, row in zip(table["classes"], table["values"]))
        fig, ax = plt.subplots(figsize=(min(2 + 0.12 * table["values"].shape[1], 20), 1 + 0.4 * len(table["classes"])))
        image = ax.imshow(table["values"], aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(table["classes"])), table["classes"])
        ax.set_xlabel(f"{m} feature")
        ax.set_ylabel("class")
        ax.set_title(f"average top-down mask: {m}")
        fig.colorbar(image, ax=ax)
        fig.tight_layout()
        fig.savefig(f"{base}.png", dpi=120)
        plt.close(fig)
        paths += [f"{base}.csv", f"{base}.png"]
    return tuple(paths)
