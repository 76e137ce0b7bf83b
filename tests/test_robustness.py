"""Robustness evaluation on a tiny trained model: SNR grid, dropped modalities, corruption curves, files."""

import csv
import json
import math
import os

import keras
import numpy as np
import pytest

from multisensory import datasets, zoo
from multisensory.datasets import registry
from multisensory.training import commands, robustness, runs

OPTIONS = {"num_examples": 64}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = zoo.create("additive_fusion", "synthetic_av", width=16, hidden=(16,))
    model.compile()
    model.fit(datasets.load("synthetic_av", "train", num_examples=256), epochs=2, verbose=0)
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    model.save(path)
    return path


def test_robustness_numbers_by_hand():
    assert robustness.relative_robustness([0, 0.5, 1], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert robustness.relative_robustness([0, 0.1, 0.2], [0.8, 0.8, 0.8]) == pytest.approx(0.16)
    # f - (g + f0 - g0) = [0.9 - 0.9, 0.8 - 0.6] = [0, 0.2]
    assert robustness.effective_robustness([0.9, 0.8], [0.7, 0.4]) == pytest.approx(0.2)


def test_snr_grid_files_and_difference(model_path, tmp_path):
    model = runs.load_model(model_path)
    grid = robustness.snr_grid(model, "synthetic_av", snrs=(math.inf, 1.0, 0.05), dataset_options=OPTIONS)
    assert grid["values"].shape == (3, 3) and grid["rows"][0] == "image" and grid["cols"][0] == "audio"
    clean = runs.evaluate(model, "synthetic_av", dataset_options=OPTIONS)["accuracy"]
    assert grid["values"][0, 0] == pytest.approx(clean)
    assert grid["values"][2, 2] < grid["values"][0, 0], "heavy noise on both modalities hurts"
    csv_path, png_path = robustness.write_grid(grid, str(tmp_path / "grid"))
    assert os.path.getsize(png_path) > 1000
    rows = list(csv.reader(open(csv_path)))
    assert rows[0] == ["image_snr \\ audio_snr", "original", "1", "0.05"] and len(rows) == 4
    again = robustness.read_grid(csv_path)
    np.testing.assert_allclose(again["values"], grid["values"], atol=1e-6)
    assert again["rows"] == grid["rows"]
    difference = robustness.grid_difference(again, grid)
    np.testing.assert_allclose(difference["values"], 0, atol=1e-6)
    robustness.write_grid(difference, str(tmp_path / "difference"))
    assert os.path.isfile(tmp_path / "difference.png")


def test_dropped_modalities(model_path):
    results = robustness.dropped_modalities(runs.load_model(model_path), "synthetic_av", dataset_options=OPTIONS)
    assert list(results) == ["none", "image", "audio"]
    assert results["image"]["accuracy"] < results["none"]["accuracy"]


def test_dropped_pairs_with_three_modalities(monkeypatch):
    info = datasets.DatasetInfo("toy_three", [datasets.Modality(n, (4,)) for n in "abc"],
                                datasets.Task("classification", num_classes=2), {"test": 16})
    rng = np.random.default_rng(0)
    features = {n: rng.normal(size=(16, 4)).astype("float32") for n in "abc"}
    labels = (features["a"][:, 0] > 0).astype("int32")
    monkeypatch.setitem(registry._REGISTRY, "toy_three",
                        (info, lambda split, data_dir=None, seed=0: datasets.array_source(features, labels), None))
    model = zoo.create("additive_fusion", info)
    model.compile()
    results = robustness.dropped_modalities(model, "toy_three")
    assert list(results) == ["none", "a", "b", "c", "a+b", "a+c", "b+c"]
    assert results["b+c"] == runs.evaluate(model, "toy_three", drop=("b", "c"))


def test_corruption_curves_and_files(model_path, tmp_path):
    model = runs.load_model(model_path)
    result = robustness.corruption_curves(model, "synthetic_av", severities=(0.0, 0.5, 1.0), dataset_options=OPTIONS)
    assert set(result["curves"]) == {"image/salt_and_pepper", "image/gaussian_blur", "image/occlusion",
                                     "audio/time_mask", "audio/frequency_mask", "audio/timestep_drop"}
    clean = runs.evaluate(model, "synthetic_av", dataset_options=OPTIONS)["accuracy"]
    for curve in result["curves"].values():
        assert curve["scores"][0] == pytest.approx(clean)
        assert curve["effective_robustness"] is None
    against = robustness.corruption_curves(model, "synthetic_av", corruptions={"audio": ["time_mask"]},
                                           severities=(0.0, 0.5, 1.0), reference=result, dataset_options=OPTIONS)
    assert against["curves"]["audio/time_mask"]["effective_robustness"] == pytest.approx(0.0, abs=1e-6)
    csv_path, png_path = robustness.write_curves(result, str(tmp_path / "curves"))
    rows = list(csv.reader(open(csv_path)))
    assert rows[0][:4] == ["modality", "corruption", "severity", "accuracy"] and len(rows) == 1 + 6 * 3
    assert os.path.getsize(png_path) > 1000


def test_cli_robustness_reports(model_path, tmp_path, capsys):
    out = str(tmp_path / "report")
    base = ["evaluate", "--model-path", model_path, "--dataset", "synthetic_av", "--dataset-option", "num_examples=64",
            "--out", out]
    assert commands.main(base + ["--robustness", "snr-grid", "--snrs", "inf,0.5"]) == 0
    assert commands.main(base + ["--robustness", "dropped"]) == 0
    assert commands.main(base + ["--robustness", "corruptions", "--severities", "0,1"]) == 0
    assert {"snr_grid.csv", "snr_grid.png", "dropped.json", "corruptions.csv", "corruptions.png",
            "corruptions.json", "logs"} <= set(os.listdir(out))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(out, "logs")))
    assert set(json.load(open(os.path.join(out, "dropped.json")))) == {"none", "image", "audio"}
    reference = os.path.join(out, "corruptions.json")
    assert commands.main(base + ["--robustness", "corruptions", "--severities", "0,1", "--reference", reference]) == 0
    curves = json.load(open(reference))["curves"]
    assert curves["image/occlusion"]["effective_robustness"] == pytest.approx(0.0, abs=1e-6)
    capsys.readouterr()
    grid = os.path.join(out, "snr_grid.csv")
    assert commands.main(["grid-diff", grid, grid, "--out", str(tmp_path / "diff")]) == 0
    assert os.path.isfile(tmp_path / "diff.png")
