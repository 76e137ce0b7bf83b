"""`higgs`: the UCI HIGGS data set as two modalities, `low_level` (21 features) and `high_level` (7 features).

Liu, Li, Xu & Natarajan, "Learn to Combine Modalities in Multimodal Deep Learning" (arXiv 1805.11730), section 4.1,
treat the 21 kinematic measurements and the 7 physicist-derived features as two modalities; the test set is the
last 500,000 of the 11,000,000 rows, as in Baldi et al. (2014).

Files under `<data_dir>/higgs/`, read in this order of preference:
- `HIGGS.csv.gz` or `HIGGS.csv` (UCI): comma-separated, label first (1.0 signal, 0.0 background), 21 low-level then
  7 high-level features. Test = the last 500,000 rows, validation = the 500,000 before them, train = the rest. A
  file of fewer than 11,000,000 rows keeps the paper's proportions: test and validation are each the last
  round(N / 22) rows (500,000 / 11,000,000 = 1 / 22).
- `binary.train` + `binary.test` (LightGBM's example files: the first rows of UCI HIGGS, tab-separated, same
  columns): test = `binary.test`; validation = the last round(N / 21) rows of `binary.train` (the same share of the
  non-test rows as above), train = the rest.

Each modality is standardised with the mean and standard deviation of the training split only, by the model itself
(`Modality.standardize`, in `info("higgs", data_dir)`): the pipeline yields the features as the files hold them, so
a saved or served model takes raw HIGGS rows. Noise at an SNR therefore acts on those raw features; a dropped
modality is all zeros, which the model keeps at 0 (the training mean, as before standardisation moved inside).

Files are checked when read: a NaN or infinite cell, or a label other than 0 or 1, is refused with the file, the row
(counted from 1) and the column, rather than dropped, truncated or spread through the standardisation statistics.
"""

import dataclasses
import os

import numpy as np

from .dataset_info import DatasetInfo, Modality, Task
from .files import DataFileError, cache_watching, check_finite, check_labels, reading, regular_file
from .registry import array_source, missing_files_error, register_dataset

FULL_ROWS, TEST_ROWS = 11_000_000, 500_000
LOW, HIGH = 21, 7
UCI_FILES = ("HIGGS.csv.gz", "HIGGS.csv")
LIGHTGBM_FILES = ("binary.train", "binary.test")

INFO = DatasetInfo(
    name="higgs",
    modalities=(
        Modality("low_level", (LOW,), "float32", "vector", "21 kinematic measurements (lepton, jets, missing energy)"),
        Modality("high_level", (HIGH,), "float32", "vector", "7 invariant masses derived by physicists"),
    ),
    task=Task("classification", num_classes=2, metrics=("accuracy", "error", "auc")),
    splits={"train": FULL_ROWS - 2 * TEST_ROWS, "validation": TEST_ROWS, "test": TEST_ROWS},
    license="CC BY 4.0 (UCI Machine Learning Repository).",
    citation=("Baldi, Sadowski & Whiteson (2014), Searching for exotic particles in high-energy physics with deep "
              "learning, Nature Communications 5:4308."),
    source="https://archive.ics.uci.edu/dataset/280/higgs (HIGGS.csv.gz); LightGBM's examples/binary_classification.",
    files=("  higgs/HIGGS.csv.gz (or HIGGS.csv)     UCI: label, 21 low-level, 7 high-level features per row\n"
           "  or higgs/binary.train + binary.test   LightGBM's tab-separated excerpt, same columns"),
)


def holdout_rows(n, share=FULL_ROWS // TEST_ROWS):
    """Rows held out of n for one split: 500,000 of the full file, else round(n / share)."""
    return TEST_ROWS if n >= FULL_ROWS else round(n / share)


COLUMNS = ("label",) + tuple(f"low_level[{i}]" for i in range(LOW)) + tuple(f"high_level[{i}]" for i in range(HIGH))


def _read_table(path, delimiter):
    """The file's rows (label, 28 features) after the checks of the module docstring."""
    with reading(regular_file(path)):
        table = np.loadtxt(path, delimiter=delimiter, dtype="float32", ndmin=2)
    if table.shape[1] != 1 + LOW + HIGH:
        raise DataFileError(f"Dataset 'higgs': '{path}' has {table.shape[1]} columns; expected {1 + LOW + HIGH} "
                            "(label, 21 low-level, 7 high-level).")
    if not len(table):
        raise DataFileError(f"Dataset 'higgs': '{path}' has no rows.")
    check_finite(table, path, COLUMNS)
    check_labels(table[:, 0], 2, path)
    return table


@cache_watching(lambda data_dir: [os.path.join(data_dir, "higgs")])
def read_splits(data_dir):
    """{split: (features (n, 28), labels (n,))} before standardisation."""
    folder = os.path.join(data_dir, "higgs")
    uci = [f for f in UCI_FILES if os.path.isfile(os.path.join(folder, f))]
    if uci:
        table = _read_table(os.path.join(folder, uci[0]), ",")
        hold = holdout_rows(len(table))
        parts = {"train": table[:-2 * hold], "validation": table[-2 * hold:-hold], "test": table[-hold:]}
    elif all(os.path.isfile(os.path.join(folder, f)) for f in LIGHTGBM_FILES):
        train = _read_table(os.path.join(folder, "binary.train"), "\t")
        hold = holdout_rows(len(train), FULL_ROWS // TEST_ROWS - 1)
        parts = {"train": train[:-hold], "validation": train[-hold:],
                 "test": _read_table(os.path.join(folder, "binary.test"), "\t")}
    else:
        raise missing_files_error(INFO, data_dir, ["higgs/HIGGS.csv.gz (or HIGGS.csv, or binary.train + binary.test)"])
    return {split: (t[:, 1:], t[:, 0].astype("int32")) for split, t in parts.items()}


def load_split(split, data_dir, seed=0):
    """Loader of `higgs`: the features as the files hold them."""
    features, labels = read_splits(os.path.abspath(data_dir))[split]
    return array_source({"low_level": features[:, :LOW], "high_level": features[:, LOW:]}, labels)


def describe(data_dir):
    """`INFO` with each modality's training-split mean and standard deviation (`Modality.standardize`)."""
    train = read_splits(os.path.abspath(data_dir))["train"][0].astype("float64")
    mean, std = train.mean(0), train.std(0)
    parts = {"low_level": slice(0, LOW), "high_level": slice(LOW, LOW + HIGH)}
    return dataclasses.replace(INFO, modalities=tuple(
        dataclasses.replace(m, standardize={"mean": mean[parts[m.name]].tolist(), "std": std[parts[m.name]].tolist()})
        for m in INFO.modalities))


register_dataset(INFO, load_split, describe)
