"""The `multisensory` command and training runs: outputs, export layout, resuming an interrupted run."""

import json
import os

import keras
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.training import commands, runs
from sentiment_fixtures import write_mult_pickle

SMALL = ["--dataset", "synthetic_av", "--dataset-option", "num_examples=96", "--batch-size", "32"]


def test_list(capsys):
    assert commands.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "additive_fusion" in out and "late_fusion" in out and "av_mnist" in out and "synthetic_av" in out


def test_parse_settings():
    assert commands.arguments.parse_setting("image=0.25,audio=0.5") == {"image": 0.25, "audio": 0.5}
    assert commands.arguments.parse_assignments(["width=8", "hidden=[8,4]", "combine=concat"]) == {
        "width": 8, "hidden": [8, 4], "combine": "concat"}


def test_train_evaluate_export(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["train", "--model", "late_fusion", *SMALL, "--epochs", "2", "--out", out, "--noise", "audio=2",
            "--config", "width=8", "--config", "hidden=[8]"]
    assert commands.main(argv) == 0
    assert "test metrics" in capsys.readouterr().out
    report = json.load(open(os.path.join(out, "metrics.json")))
    assert set(report["test"]) == {"loss", "accuracy", "error", "auc"}
    assert report["test"]["accuracy"] == pytest.approx(1 - report["test"]["error"])
    assert report["settings"]["noise"] == {"audio": 2.0} and report["settings"]["config"]["width"] == 8
    assert os.listdir(os.path.join(out, "logs"))
    assert not os.path.exists(os.path.join(out, "backup")), "the backup is removed once a run completes"
    export_dir = os.path.join(out, "export", "late_fusion", "1")
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))

    assert commands.main(["evaluate", "--model-path", os.path.join(out, "model.keras"), *SMALL, "--noise", "audio=2"]) == 0
    assert "accuracy" in capsys.readouterr().out
    again = runs.evaluate(os.path.join(out, "model.keras"), "synthetic_av", noise={"audio": 2.0},
                            dataset_options={"num_examples": 96})
    assert again == pytest.approx(report["test"], rel=1e-5)

    serving = str(tmp_path / "serving")
    for version in ("1", "2"):
        assert commands.main(["export", "--model-path", os.path.join(out, "model.keras"), "--out", serving,
                         "--name", "av"]) == 0
        assert capsys.readouterr().out.strip() == os.path.join(serving, "av", version)
    signature = tf.saved_model.load(os.path.join(serving, "av", "2")).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"image", "audio"}
    assert set(signature.structured_outputs) == {"logits", "probabilities", "class_id"}


def test_bad_names_exit_with_a_message(capsys):
    assert commands.main(["train", "--model", "nope", *SMALL]) == 2
    assert ", ".join(zoo.list_models()) in capsys.readouterr().err
    assert commands.main(["train", "--model", "late_fusion", "--dataset", "nope"]) == 2
    assert ", ".join(datasets.list_datasets()) in capsys.readouterr().err


def test_synergy_dropped_study_writes_its_table(tmp_path):
    write_mult_pickle(tmp_path / "mosi", length=6)
    out = tmp_path / "study"
    assert commands.main(["study", "synergy-dropped", "--dataset", "mosi", "--data-dir", str(tmp_path), "--models", "lmf",
                     "--epochs", "1", "--batch-size", "4", "--synergy", "divergence=kl", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "multisensory study synergy-dropped --dataset mosi" in report
    header = next(line for line in report.splitlines() if line.startswith("| run"))
    assert {"dropped none", "dropped text", "dropped text+audio", "dropped text+vision"} <= {
        c.strip() for c in header.split("|")}
    titles = [line for line in report.splitlines() if line.startswith("Test")]
    assert titles == ["Test mae:", "Test acc2_has0:", "Test acc2_non0:"]
    rows = [line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| lmf")]
    assert rows == ["lmf", "lmf-synergy"] * 3
    results = json.loads((out / "dropped.json").read_text())
    assert results["settings"]["synergy"]["divergence"] == "kl"
    assert results["results"]["lmf"]["text"]["mae"] != results["results"]["lmf"]["none"]["mae"]


def test_steps_per_execution_trains_the_same_weights_and_counts_every_batch(tmp_path):
    """Several batches per call of the compiled training step (`--steps-per-execution`, Keras' `compile` argument):
    the weights of one batch per call, with the synergy regulariser's two optimisers too, and `Throughput` counts
    every batch though Keras calls it once per call."""
    import numpy as np

    from multisensory.training.throughput import Throughput

    weights = []
    for k in ("1", "3"):
        out = str(tmp_path / f"run{k}")
        assert commands.main(["train", "--model", "additive_fusion", *SMALL, "--config", "width=8", "--config",
                         "synergy={}", "--epochs", "2", "--steps-per-execution", k, "--out", out]) == 0
        model = runs.load_model(os.path.join(out, "model.keras"))
        assert model.steps_per_execution == int(k)
        weights.append(model.get_weights())
    assert len(weights[0]) == len(weights[1]) > 10
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)

    data = datasets.load("synthetic_av", "train", batch_size=16, num_examples=96)
    batches = int(data.cardinality())
    assert batches % 4, "a last call of fewer batches than steps_per_execution"
    for k in (1, 4):
        model = zoo.create("additive_fusion", "synthetic_av", width=8)
        model.compile(steps_per_execution=k)
        throughput = Throughput(16)
        model.fit(data, epochs=1, verbose=0, callbacks=[throughput])
        assert throughput.batches == batches


def test_tensorboard_logs_every_loss_term_the_rate_and_throughput_per_step(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    out = tmp_path / "run"
    assert commands.main(["train", "--model", "mulmix", "--dataset", "synthetic_av", "--dataset-option",
                     "num_examples=128", "--epochs", "1", "--batch-size", "32", "--log-every", "2",
                     "--out", str(out)]) == 0
    events = event_accumulator.EventAccumulator(str(out / "logs" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"epoch_examples_per_s", "epoch_learning_rate", "epoch_branch_0_loss", "epoch_branch_1_loss",
            "epoch_branch_0_1_loss", "epoch_loss"} <= tags, tags
    assert "batch_loss" in tags and len(events.Tensors("batch_loss")) == 2  # 4 steps, every 2
    assert float(tf.make_ndarray(events.Tensors("epoch_examples_per_s")[0].tensor_proto)) > 0
    assert events.Tags()["graph"] and len(events.Graph().node) > 20  # the Graphs dashboard


def test_refusals_that_protect_run_folders_and_exports(tmp_path, capsys):
    """Each of these once saved garbage or wrote where it should not; now each is refused up front (exit 2)."""
    train = ["train", "--model", "additive_fusion", "--dataset", "synthetic_av", "--dataset-option",
             "num_examples=64", "--out", str(tmp_path / "run")]
    assert commands.main(train + ["--epochs", "0"]) == 2 and not (tmp_path / "run" / "model.keras").exists()
    assert commands.main(train + ["--epochs", "1", "--batch-size", "0"]) == 2
    assert commands.main(train + ["--epochs", "1", "--noise", "image=1e-50"]) == 2
    errors = capsys.readouterr().err
    assert "epochs must be at least 1" in errors and "batch_size must be at least 1" in errors
    assert "SNR for modality 'image' must lie in [1e-30" in errors

    # metrics.json is strict JSON: an SNR of inf (no noise) is written as "inf"
    assert commands.main(train + ["--epochs", "1", "--noise", "audio=inf"]) == 0
    text = (tmp_path / "run" / "metrics.json").read_text()
    report = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))
    assert report["settings"]["noise"] == {"audio": "inf"}

    model_path = str(tmp_path / "run" / "model.keras")
    for bad in (["--name", "../../x"], ["--name", "a/b"], ["--version", "-3"], ["--version", "0"]):
        assert commands.main(["export", "--model-path", model_path, "--out", str(tmp_path / "serving"), *bad]) == 2
    assert not (tmp_path.parent / "x").exists() and not list((tmp_path / "serving").rglob("saved_model.pb"))
    errors = capsys.readouterr().err
    assert "must be one folder name" in errors and "must be a positive integer" in errors

    grid = tmp_path / "grid.csv"
    grid.write_text("image_snr \\ audio_snr,original,1\noriginal,0.9,0.8\n1,0.7,0.6\n")
    before = grid.read_text()
    assert commands.main(["grid-diff", str(grid), str(grid), "--out", str(tmp_path / "grid")]) == 2
    assert grid.read_text() == before and "would overwrite an input" in capsys.readouterr().err
    link = tmp_path / "link.csv"  # an output path that is a link to an input
    link.symlink_to(grid)
    assert commands.main(["grid-diff", str(grid), str(grid), "--out", str(tmp_path / "link")]) == 2
    assert grid.read_text() == before and "would overwrite an input" in capsys.readouterr().err


def test_help_answers_at_once_and_a_run_prints_one_line_per_epoch(tmp_path):
    """--help without TensorFlow; TensorFlow's harmless start-up lines and Keras' shuffle warning left out; a run
    whose output is not a terminal prints one line per epoch, --quiet none."""
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "multisensory.training.commands"]
    start = time.perf_counter()
    done = subprocess.run(command + ["train", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--learning-rate" in done.stdout
    assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    done = subprocess.run(command + ["train", "--model", "additive_fusion", "--epochs", "x"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "invalid int value" in done.stderr and time.perf_counter() - start < 1.0

    train = command + ["train", "--model", "additive_fusion", *SMALL, "--epochs", "2", "--config", "width=8",
                       "--config", "hidden=[8]"]
    done = subprocess.run(train + ["--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for harmless in ("cudart_stub", "cpu_feature_guard", "absl::InitializeLog", "shuffle=True"):
        assert harmless not in done.stderr, done.stderr
    assert done.stdout.count("Epoch ") == 2 and "\r" not in done.stdout and len(done.stdout) < 2000, done.stdout
    done = subprocess.run(train + ["--out", str(tmp_path / "quiet"), "--quiet"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "Epoch" not in done.stdout and "test metrics" in done.stdout


def test_json_output_of_evaluate_train_and_list(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert commands.main(["train", "--model", "additive_fusion", *SMALL, "--epochs", "1", "--config", "width=8",
                          "--out", out, "--json", "--learning-rate", "0.05", "--patience", "0"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)  # stdout is the JSON alone; the progress went to stderr
    assert set(metrics) == {"loss", "accuracy", "error", "auc"} and "val_accuracy" in captured.err
    record = json.loads(open(os.path.join(out, "metrics.json")).read())
    assert record["test"] == pytest.approx(metrics) and record["settings"]["learning_rate"] == 0.05
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)

    result = str(tmp_path / "reports" / "eval.json")
    assert commands.main(["evaluate", "--model-path", os.path.join(out, "model.keras"), *SMALL, "--json",
                          "--out", result]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.load(open(result)) and printed == pytest.approx(metrics, rel=1e-5)
    assert commands.main(["list", "--json"]) == 0
    assert "additive_fusion" in json.loads(capsys.readouterr().out)["models"]
    assert commands.main(["train", "--model", "additive_fusion", *SMALL, "--learning-rate", "-1"]) == 2
    assert "--learning-rate must be a positive number" in capsys.readouterr().err


def test_compare_trains_the_fusion_model_and_one_baseline_per_modality(tmp_path, capsys):
    """What `make demo` runs, at a tiny size: a rerun reuses the finished runs."""
    out = str(tmp_path / "compare")
    argv = ["compare", "--model", "additive_fusion", *SMALL, "--epochs", "1", "--config", "width=8", "--out", out,
            "--quiet"]
    assert commands.main(argv) == 0
    text = capsys.readouterr().out
    assert "fusion" in text and "image_only" in text and "audio_only" in text
    assert commands.main(argv + ["--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == {"fusion", "image_only", "audio_only"}
    assert results == json.load(open(os.path.join(out, "compare.json")))
    assert json.load(open(os.path.join(out, "image_only", "metrics.json")))["settings"]["drop"] == ["audio"]
