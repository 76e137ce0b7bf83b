"""KerasTuner studies: every registered model's search space samples and builds; a study completes, resumes without
re-running finished trials, and ends with a best model that reloads, predicts and serves."""

import json
import os
import shlex
import subprocess
import types

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from multisensory.training import commands, tuning
from model_harness import model_cases


def test_every_registered_models_search_space_samples_and_builds():
    seen, composed = set(), {"tfn-head_mulmix_synergy"}  # one case adds both stages' spaces
    for case_id, name, info, (features, _), config in model_cases():
        if name in seen and case_id not in composed:
            continue
        seen.add(name)
        hp = keras_tuner.HyperParameters()
        model = tuning.ZooHyperModel(name, info, config).build(hp)
        assert "learning_rate" in hp.values, case_id
        assert float(model.optimizer.learning_rate) == pytest.approx(hp.values["learning_rate"])
        assert not set(config) & set(hp.values), f"{case_id}: a fixed key was searched"
        if "synergy" in config:
            assert {"synergy.beta", "synergy.gamma_kappa", "batch_size"} <= set(hp.values), case_id
        if "head" in config:
            assert {"head.beta", "head.boosted", "head.margin"} <= set(hp.values), case_id
        x = {k: v[:2] for k, v in features.items()}
        assert np.all(np.isfinite(model.predict(x, verbose=0))), case_id
    assert seen == {c[1] for c in model_cases()}


def test_objective_direction_follows_the_metric():
    from multisensory import datasets

    task = datasets.info("mosi").task
    assert tuning.objective(task).name == "val_mae" and tuning.objective(task).direction == "min"
    assert tuning.objective(task, "val_acc2_non0").direction == "max"
    assert tuning.objective(datasets.info("synthetic_av").task).direction == "max"
    with pytest.raises(ValueError, match="Unknown tuner 'grid'; tuners: random, bayesian, hyperband"):
        tuning.tuner("tfn", datasets.info("synthetic_av"), tuner="grid")
    with pytest.raises(ValueError, match="chief/worker mode"):
        tuning.tuner("tfn", datasets.info("synthetic_av"), strategy="multiworker")
    for bad, message in (({"max_trials": 0}, "max_trials must be a positive integer, got 0"),
                         ({"max_trials": -1}, "max_trials must be a positive integer, got -1"),
                         ({"objective_name": "val_acc"}, "Unknown objective 'val_acc'; the task's objectives: "
                                                         "val_loss, val_accuracy, val_error, val_auc, loss")):
        with pytest.raises(ValueError, match=message):
            tuning.tuner("tfn", datasets.info("synthetic_av"), **bad)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        tuning.tune("tfn", "synthetic_av", epochs=0)


@pytest.mark.parametrize("tuner", sorted(tuning.TUNERS))
def test_every_tuner_completes_a_short_study(tmp_path, tuner):
    """Each documented tuner runs with the installed dependencies (the Bayesian one needs SciPy)."""
    study, metrics = tuning.tune("additive_fusion", "synthetic_av", directory=str(tmp_path), tuner_name=tuner,
                                 max_trials=2, epochs=2, batch_size=64, config={"width": 8},
                                 dataset_options={"num_examples": 64}, verbose=0)
    assert len(study.oracle.trials) >= 2 and 0.0 <= metrics["accuracy"] <= 1.0


def test_a_study_under_mirrored_strategy_builds_every_trial_in_its_scope(tmp_path):
    from multisensory import datasets

    study = tuning.tuner("additive_fusion", datasets.info("synthetic_av"), directory=str(tmp_path),
                         strategy="mirrored", config={"width": 8})
    assert isinstance(study.distribution_strategy, tf.distribute.MirroredStrategy)
    model = study._try_build(study.oracle.get_space())
    assert model.distribute_strategy is study.distribution_strategy


def test_a_study_resumes_without_rerunning_trials_and_serves_its_best_model(tmp_path, capsys):
    args = ["tune", "--model", "additive_fusion", "--dataset", "synthetic_av", "--config", "width=8",
            "--config", "hidden=[8]", "--dataset-option", "num_examples=192", "--epochs", "1", "--batch-size", "64",
            "--directory", str(tmp_path), "--project-name", "av"]
    assert commands.main(args + ["--max-trials", "1"]) == 0
    root = tmp_path / "av"
    first = sorted(p.name for p in root.iterdir() if p.name.startswith("trial_"))
    first_trial = json.loads((root / first[0] / "trial.json").read_text())
    assert commands.main(args + ["--max-trials", "2", "--summary"]) == 0
    trials = sorted(p.name for p in root.iterdir() if p.name.startswith("trial_"))
    assert len(first) == 1 and len(trials) == 2
    assert json.loads((root / first[0] / "trial.json").read_text()) == first_trial  # not run again
    out = capsys.readouterr().out
    assert "val_accuracy   val_loss  hyperparameters" in out and "tensorboard --logdir" in out

    report = json.loads((root / "best" / "metrics.json").read_text())
    assert set(report["hyperparameters"]) >= {"learning_rate", "combine", "dropout"}
    assert report["study"]["objective"] == "val_accuracy" and 0 <= report["test"]["accuracy"] <= 1
    # a rerun on other terms is refused, and nothing of the study changes
    for other in (["--noise", "audio=2"], ["--objective", "val_loss"]):
        assert commands.main(args + ["--max-trials", "3", *other]) == 2
        assert "other settings" in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("trial_")) == trials
    assert json.loads((root / "best" / "metrics.json").read_text()) == report
    # the best trial retrains from its folder, and the published preset's command rebuilds the same model
    def config(path):  # the model's configuration, less the name Keras numbers per process
        return {k: v for k, v in keras.saving.load_model(path, safe_mode=True).get_config().items() if k != "name"}

    best_config = config(root / "best" / "model.keras")
    best_trial = root / f"trial_{report['study']['trial']}"
    assert commands.main(["train", "--from-trial", str(best_trial), "--epochs", "1", "--out",
                          str(tmp_path / "rerun"), "--quiet"]) == 0
    rerun = json.loads((tmp_path / "rerun" / "metrics.json").read_text())["settings"]
    assert rerun["learning_rate"] == report["hyperparameters"]["learning_rate"] and rerun["batch_size"] == 64
    assert rerun["config"] == report["settings"]["config"]
    assert config(tmp_path / "rerun" / "model.keras") == best_config
    from multisensory.training import publishing

    command = publishing.train_command(report["settings"])
    assert "--learning-rate" in command and "--config dropout=" in command
    assert commands.main(shlex.split(command)[1:] + ["--out", str(tmp_path / "recorded"), "--quiet"]) == 0
    assert config(tmp_path / "recorded" / "model.keras") == best_config
    best = keras.saving.load_model(root / "best" / "model.keras", safe_mode=True)
    x = {"image": np.zeros((3, 16, 16, 1), "float32"), "audio": np.zeros((3, 20, 32), "float32")}
    served = tf.saved_model.load(report["settings"]["export"]).signatures["serving_default"]
    np.testing.assert_allclose(served(**{k: tf.constant(v) for k, v in x.items()})["logits"],
                               best.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    # every trial logged its hyperparameters for TensorBoard's HParams dashboard
    from tensorboard.backend.event_processing import event_accumulator

    hparams = []
    for trial_dir, _, files in os.walk(root / "logs"):
        for name in files:
            events = event_accumulator.EventAccumulator(os.path.join(trial_dir, name),
                                                        size_guidance={event_accumulator.TENSORS: 0})
            events.Reload()
            hparams += [tag for tag in events.summary_metadata if tag.startswith("_hparams_")]
    assert "_hparams_/session_start_info" in hparams


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chief_and_two_workers_complete_one_study_on_127_0_0_1(tmp_path):
    """KerasTuner's chief/worker mode: the chief serves the oracle, two worker processes run the trials."""
    import subprocess
    import sys
    import time

    port = str(_free_port())
    command = [sys.executable, "-m", "multisensory.training.commands", "tune", "--model", "additive_fusion", "--dataset",
               "synthetic_av", "--config", "width=8", "--config", "hidden=[8]", "--dataset-option",
               "num_examples=128", "--epochs", "1", "--batch-size", "64", "--max-trials", "3",
               "--directory", str(tmp_path), "--project-name", "shared"]
    processes = []
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": "127.0.0.1",
                   "KERASTUNER_ORACLE_PORT": port, "TF_CPP_MIN_LOG_LEVEL": "3"}
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True))
            if tuner_id == "chief":
                time.sleep(1)
        outputs = [p.communicate(timeout=300)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in processes] == [0, 0, 0], "\n".join(o[-2000:] for o in outputs)
    assert all("worker done" in o for o in outputs[1:]) and "test metrics of the best trial" in outputs[0]
    root = tmp_path / "shared"
    trials = [json.loads((root / d / "trial.json").read_text()) for d in os.listdir(root) if d.startswith("trial_")]
    assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials)
    assert (root / "best" / "model.keras").exists()


def test_a_missing_dependency_of_a_tuner_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    def missing(*args, **kwargs):
        raise ImportError("Please install scipy before using the `BayesianOptimization`.")

    monkeypatch.setitem(tuning.TUNERS, "bayesian", missing)
    code = commands.main(["tune", "--model", "additive_fusion", "--dataset", "synthetic_av", "--tuner", "bayesian",
                     "--max-trials", "1", "--epochs", "1", "--directory", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "error: Please install scipy before using the `BayesianOptimization`."


def _trial(trial_id, score, val_loss):
    from keras_tuner.engine.trial import Trial

    trial = Trial(keras_tuner.HyperParameters(), trial_id=trial_id, status="COMPLETED")
    trial.score = score
    trial.metrics.register("val_loss", direction="min")
    trial.metrics.update("val_loss", val_loss)
    return trial


def test_tied_trials_are_ranked_by_validation_loss_and_said():
    trials = [_trial("00", 1.0, 0.30), _trial("01", 0.9, 0.01), _trial("02", 1.0, 0.10), _trial("03", 1.0, 0.20)]
    study = types.SimpleNamespace(oracle=types.SimpleNamespace(
        objective=keras_tuner.Objective("val_accuracy", "max"), trials={t.trial_id: t for t in trials}))
    ranked = tuning.ranking(study)
    assert [t.trial_id for t in ranked.trials] == ["02", "03", "00", "01"]
    assert [t.trial_id for t in ranked.tied] == ["02", "03", "00"]
    assert "3 trials tie at the best val_accuracy (1)" in ranked.tie_message() and "trial 02" in ranked.tie_message()
    table = tuning.format_ranking(ranked).splitlines()
    assert table[1].split()[:3] == ["02", "1", "0.1"] and table[1].endswith("(tied)")
    assert not table[-1].endswith("(tied)")
    trials[0].score = 0.95  # one best alone: no tie
    alone = tuning.ranking(types.SimpleNamespace(oracle=types.SimpleNamespace(
        objective=keras_tuner.Objective("val_accuracy", "max"), trials={"00": trials[0], "01": trials[1]})))
    assert alone.best.trial_id == "00" and alone.tied == []


def test_a_study_is_locked_while_a_process_tunes_it(tmp_path, capsys):
    (tmp_path / "av").mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "av" / ".lock").write_text(str(holder.pid))
        assert commands.main(["tune", "--model", "additive_fusion", "--dataset", "synthetic_av", "--directory",
                              str(tmp_path), "--project-name", "av", "--max-trials", "1"]) == 2
        assert f"Another study (process {holder.pid})" in capsys.readouterr().err
        assert sorted(p.name for p in (tmp_path / "av").iterdir()) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
