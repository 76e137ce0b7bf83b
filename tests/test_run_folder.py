"""A run folder is never lost or mixed: refusals, the lock, atomic writes, exact resumes, kills at random points."""

import errno
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import zoo
from multisensory.training import atomic, checkpoints, commands, run_folder, runs

TINY = dict(batch_size=16, dataset_options={"num_examples": 64}, config={"width": 8, "dropout": 0.3},
            noise={"audio": 1.0}, dropout={"image": 0.3}, export=False, verbose=0)
CLI_TINY = ["--model", "additive_fusion", "--dataset", "synthetic_av", "--dataset-option", "num_examples=64",
            "--batch-size", "16", "--config", "width=8"]


class Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def interrupted(out, after_epoch=1, **args):
    with pytest.raises(KeyboardInterrupt):
        runs.train("additive_fusion", "synthetic_av", out, callbacks=[Interrupt(after_epoch)], **{**TINY, **args})


def weights(path):
    return runs.load_model(path).get_weights()


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    """Data order, training noise, modality dropout and dropout masks all continue where they stopped."""
    whole, resumed = str(tmp_path / "whole"), str(tmp_path / "resumed")
    expected = runs.train("additive_fusion", "synthetic_av", whole, epochs=3, **TINY)
    interrupted(resumed, epochs=3)
    assert checkpoints.saved_epoch(os.path.join(resumed, "backup")) == 2
    assert runs.train("additive_fusion", "synthetic_av", resumed, epochs=3, **TINY) == expected
    for a, b in zip(weights(os.path.join(whole, "model.keras")), weights(os.path.join(resumed, "model.keras"))):
        np.testing.assert_array_equal(a, b)
    assert not os.path.exists(os.path.join(resumed, "backup")), "removed once the run's results are written"


def test_best_keras_keeps_the_best_epoch_across_a_resume(tmp_path):
    model = zoo.create("additive_fusion", "synthetic_av", width=8)
    model.compile()
    path, folder = str(tmp_path / "best.keras"), str(tmp_path / "backup")
    best = checkpoints.BestModel(path, "val_accuracy", "max")
    backup = checkpoints.Backup(folder, best)  # runs `best` first: the saved state holds this epoch's best
    backup.set_model(model)
    backup.on_epoch_end(0, {"val_accuracy": 0.7})
    backup.on_epoch_end(1, {"val_accuracy": 0.9})
    with open(os.path.join(folder, "state.json")) as f:
        assert json.load(f)["best"] == pytest.approx(0.9)  # not one epoch late (0.7)
    saved = os.path.getmtime(path), open(path, "rb").read()

    best, backup = checkpoints.BestModel(path, "val_accuracy", "max"), checkpoints.Backup(folder, None)
    backup.best = best
    for callback in (best, backup):
        callback.set_model(model)
    backup.on_train_begin()
    assert best.best == pytest.approx(0.9) and model._initial_epoch == 2
    best.on_epoch_end(1, {"val_accuracy": 0.5})  # worse than before the interruption: best.keras stays
    assert (os.path.getmtime(path), open(path, "rb").read()) == saved
    model.set_weights([w + 1.0 for w in model.get_weights()])  # as training would have changed them
    best.on_epoch_end(2, {"val_accuracy": 0.95})
    for a, b in zip(weights(path), model.get_weights()):
        np.testing.assert_array_equal(a, b)


class Spoil(keras.callbacks.Callback):
    """Replaces the weights with zeros from epoch `at` on: validation accuracy falls to one class's share."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.at:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])


def test_the_best_epoch_is_reported_saved_and_exported_and_training_stops_after_patience(tmp_path):
    """Keras' EarlyStopping(restore_best_weights=True) semantics: the run stops `patience` epochs after its best
    epoch, and model.keras, metrics.json and the export are that epoch's model, as best.keras; `select="last"`
    keeps the last epoch's."""
    settings = dict(TINY, dataset_options={"num_examples": 256}, noise={}, dropout={}, epochs=6, patience=2)
    out = str(tmp_path / "best")
    metrics = runs.train("additive_fusion", "synthetic_av", out, callbacks=[Spoil(3)], **{**settings, "export": True})
    record = runs.read_json(os.path.join(out, "metrics.json"))
    selection = record["selection"]
    assert (selection["epochs_run"], selection["epochs"], selection["select"]) == (5, 6, "best")  # stopped early
    assert selection["epoch"] == selection["best_epoch"] <= 3 and selection["monitor"] == "val_accuracy"
    for a, b in zip(weights(os.path.join(out, "model.keras")), weights(os.path.join(out, "best.keras"))):
        np.testing.assert_array_equal(a, b)
    assert metrics == record["test"]
    assert metrics["accuracy"] == pytest.approx(runs.evaluate(os.path.join(out, "best.keras"), "synthetic_av",
                                                              batch_size=16, dataset_options={"num_examples": 256})[
        "accuracy"])
    served = tf.saved_model.load(record["settings"]["export"]).signatures["serving_default"]
    x, _ = next(iter(runs.datasets.load("synthetic_av", "test", batch_size=8, num_examples=256, shuffle=False)))
    np.testing.assert_allclose(served(**x)["logits"], runs.load_model(os.path.join(out, "best.keras")).predict(
        x, verbose=0), atol=1e-5)

    last = str(tmp_path / "last")
    runs.train("additive_fusion", "synthetic_av", last, callbacks=[Spoil(3)], select="last", **settings)
    selection = runs.read_json(os.path.join(last, "metrics.json"))["selection"]
    assert (selection["select"], selection["epoch"], selection["epochs_run"]) == ("last", 5, 5)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(os.path.join(last, "model.keras")),
                                                        weights(os.path.join(last, "best.keras"))))
    spoilt = runs.read_json(os.path.join(last, "metrics.json"))["test"]["accuracy"]
    assert metrics["accuracy"] > spoilt + 0.05, (metrics["accuracy"], spoilt)
    with pytest.raises(ValueError, match="select must be one of"):
        runs.train("additive_fusion", "synthetic_av", str(tmp_path / "x"), select="first", **settings)


def test_a_finished_run_is_refused_then_replaced_with_overwrite(tmp_path, capsys):
    out = str(tmp_path / "run")
    train = ["train", *CLI_TINY, "--epochs", "1", "--out", out, "--noise", "audio=1"]
    assert commands.main(train) == 0
    before = open(os.path.join(out, "model.keras"), "rb").read()
    capsys.readouterr()
    os.makedirs(os.path.join(out, "backup"))  # as a kill after the results were written, before the backup went
    open(os.path.join(out, "backup", "state.json"), "w").close()
    assert commands.main(train) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "backup")), "a finished run's backup can never be resumed"
    assert open(os.path.join(out, "model.keras"), "rb").read() == before
    assert commands.main(train + ["--resume"]) == 2
    assert commands.main(train + ["--overwrite", "--seed", "1"]) == 0
    assert sorted(os.listdir(os.path.join(out, "export", "additive_fusion"))) == ["1", "2"], "exports are kept"
    report = json.load(open(os.path.join(out, "metrics.json")))
    assert report["settings"]["seed"] == 1

    # evaluate reproduces the run's test metrics from its seed, whatever TensorFlow's global seed is
    keras.utils.set_random_seed(123)
    again = runs.evaluate(os.path.join(out, "model.keras"), "synthetic_av", noise={"audio": 1.0}, seed=1,
                          batch_size=16, dataset_options={"num_examples": 64})
    assert again == pytest.approx(report["test"], rel=1e-6)


def test_a_resume_with_other_settings_is_refused_with_the_differences(tmp_path):
    out = str(tmp_path / "run")
    interrupted(out, epochs=3, after_epoch=0)
    with pytest.raises(run_folder.RunFolderError, match=r"interrupted run with other settings: epochs: 3 -> 4; "
                                                        r"noise: \{'audio': 1.0\} -> \{'audio': 2.0\}"):
        runs.train("additive_fusion", "synthetic_av", out, epochs=4, **{**TINY, "noise": {"audio": 2.0}})
    with pytest.raises(run_folder.RunFolderError, match="Nothing to resume"):
        runs.train("additive_fusion", "synthetic_av", str(tmp_path / "empty"), epochs=3, existing="resume", **TINY)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(sleeper.pid))
        with pytest.raises(run_folder.RunFolderError, match=f"Another run \\(process {sleeper.pid}\\) is writing"):
            with run_folder.Lock(str(tmp_path)):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    with run_folder.Lock(str(tmp_path)):  # the lock of a process that no longer runs is taken over
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


@pytest.mark.parametrize("damage", ["truncated", "corrupt bytes"])
def test_an_unreadable_backup_is_moved_aside_and_the_run_starts_over(tmp_path, damage):
    out, clean = str(tmp_path / "run"), str(tmp_path / "clean")
    interrupted(out, epochs=2, after_epoch=0)
    [saved] = glob.glob(os.path.join(out, "backup", "*.weights.h5"))
    with open(saved, "r+b") as f:
        if damage == "truncated":
            f.truncate(100)
        else:  # the file keeps its size; its metadata and data are overwritten
            size = os.path.getsize(saved)
            f.seek(size // 8)
            f.write(bytes(range(256)) * ((size - size // 8) // 256))
    with pytest.warns(UserWarning, match="cannot be read.*training starts over from the first epoch"):
        runs.train("additive_fusion", "synthetic_av", out, epochs=2, **TINY)
    assert os.path.exists(os.path.join(out, "metrics.json"))
    assert glob.glob(os.path.join(out, "backup.unreadable-*", "*.weights.h5")), "kept, not deleted"
    runs.train("additive_fusion", "synthetic_av", clean, epochs=2, **TINY)  # starting over is a run from scratch
    for a, b in zip(weights(os.path.join(out, "model.keras")), weights(os.path.join(clean, "model.keras"))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_resume_on_other_data_files_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.savez(data / "all.npz", a=rng.normal(size=(40, 3)), label=rng.integers(0, 2, 40))
    (data / "dataset.json").write_text(json.dumps({
        "modalities": [{"name": "a", "shape": [3]}], "task": {"type": "classification", "num_classes": 2},
        "files": "all.npz", "split": {"train": 0.5, "validation": 0.25, "test": 0.25}}))
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    out = str(tmp_path / "run")
    args = dict(epochs=3, batch_size=8, config={"width": 4}, export=False, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        runs.train("additive_fusion", str(data), out, callbacks=[Interrupt(0)], **args)
    with pytest.raises(run_folder.RunFolderError, match=r"other settings: data: .*'path': '[^']*/data'.* -> "
                                                        r".*'path': '[^']*/copy'"):
        runs.train("additive_fusion", str(copy), out, **args)
    np.savez(data / "all.npz", a=rng.normal(size=(40, 3)), label=rng.integers(0, 2, 40))  # the files changed
    with pytest.raises(run_folder.RunFolderError, match=r"other settings: data: .*'fingerprint'"):
        runs.train("additive_fusion", str(data), out, **args)


def test_a_kill_mid_write_leaves_the_last_good_state(tmp_path, monkeypatch):
    """A kill while the second epoch's weights are written: a temporary file, never a truncated backup."""
    out = str(tmp_path / "run")
    real = atomic.save_weights
    calls = []

    def killed_mid_write(model, path):
        calls.append(path)
        if len(calls) == 2:
            with atomic.destination(path) as temporary:
                with open(temporary, "wb") as f:
                    f.write(b"\x89HDF\r\n")  # the first bytes, then the process dies
                raise KeyboardInterrupt
        real(model, path)

    monkeypatch.setattr(atomic, "save_weights", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        runs.train("additive_fusion", "synthetic_av", out, epochs=3, **TINY)
    monkeypatch.setattr(atomic, "save_weights", real)
    assert checkpoints.saved_epoch(os.path.join(out, "backup")) == 1
    # a SIGKILL skips the clean-up: leftovers of each kind of write, which the resumed run removes
    os.makedirs(os.path.join(out, "export", "additive_fusion", atomic.temporary_name("1"), "variables"))
    for leftover in (atomic.temporary_name("best.keras"), os.path.join("backup", atomic.temporary_name("state.json"))):
        open(os.path.join(out, leftover), "wb").close()
    runs.train("additive_fusion", "synthetic_av", out, epochs=3, **TINY)
    assert os.path.exists(os.path.join(out, "metrics.json"))
    assert not [p for p in glob.glob(os.path.join(out, "**", ".*tmp-*"), recursive=True)]


def test_a_full_disk_is_one_line_exit_2_and_the_rerun_finishes(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")

    def full(model, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(atomic, "save_model", full)
    assert commands.main(["train", *CLI_TINY, "--epochs", "2", "--out", out]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: OSError: [Errno 28] No space left on device") and "\n" not in error
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    monkeypatch.undo()
    assert commands.main(["train", *CLI_TINY, "--epochs", "2", "--out", out]) == 0  # resumes with no epoch left
    assert "resuming from the backup" in capsys.readouterr().out
    # best.keras, whose writes failed, is written on the resume from the backup's best weights: the selected model
    for a, b in zip(weights(os.path.join(out, "best.keras")), weights(os.path.join(out, "model.keras"))):
        np.testing.assert_array_equal(a, b)


def test_a_file_size_limit_is_one_line_exit_2_never_a_crash(tmp_path):
    """Under `ulimit -f` below the model's size, HDF5's failed writes once crashed the process (exit 139)."""
    import resource

    out = str(tmp_path / "run")

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 << 10, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-m", "multisensory.training.commands", "train", *CLI_TINY, "--epochs",
                           "1", "--out", out, "--quiet"], preexec_fn=limited, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: OSError: [Errno 27] File too large") and "file-size limit" in error, error
    assert not os.path.exists(os.path.join(out, "metrics.json"))


def test_a_disk_without_room_for_the_weights_is_refused_before_writing(tmp_path, monkeypatch):
    import collections

    model = zoo.create("additive_fusion", "synthetic_av", width=8)
    model.compile()
    model.build({"image": (None, 16, 16, 1), "audio": (None, 20, 32)})
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 4096, 4096))
    with pytest.raises(OSError, match=r"No space left on device: writing '.*w\.weights\.h5' needs about [\d,]+ bytes, "
                                      r"4,096 are free") as error:
        atomic.save_weights(model, str(tmp_path / "w.weights.h5"))
    assert error.value.errno == errno.ENOSPC and not list(tmp_path.iterdir())


def test_bad_arguments_are_one_line_and_exit_2_before_any_training(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    (tmp_path / "cut.keras").write_bytes(b"PK\x03\x04" + bytes(100))
    cases = {
        "cut.keras' is not a readable .keras archive": ["evaluate", "--model-path", str(tmp_path / "cut.keras"),
                                                        "--dataset", "synthetic_av"],
        "not valid JSON": ["train", *CLI_TINY, "--config", "hidden=[8,", "--out", str(tmp_path / "a")],
        "is a file, not a directory": ["train", "--model", "additive_fusion", "--dataset", "av_mnist",
                                       "--data-dir", str(tmp_path / "file"), "--out", str(tmp_path / "b")],
        "Unknown model(s) ['nope']": ["study", "synergy-dropped", "--dataset", "synthetic_av", "--models",
                                      "late_fusion,nope", "--out", str(tmp_path / "c")],
        "num_pairs must be a positive integer": ["train", "--model", "additive_fusion", "--dataset", "av_mnist",
                                                 "--dataset-option", "num_pairs=-5", "--out", str(tmp_path / "d")],
    }
    for message, argv in cases.items():
        started = time.perf_counter()
        assert commands.main(argv) == 2, message
        error = capsys.readouterr().err.strip()
        assert message in error and "\n" not in error.split("Expected layout")[0], error
        assert time.perf_counter() - started < 20, "refused up front"
    assert not (tmp_path / "c").exists()


def test_kills_at_random_points_always_resume_or_restart_cleanly(tmp_path):
    """SIGKILL at random times (seeded) during `multisensory train`, then the same command until it finishes."""
    out = str(tmp_path / "run")
    command = [sys.executable, "-m", "multisensory.training.commands", "train", *CLI_TINY, "--epochs", "30",
               "--out", out, "--noise", "audio=1", "--dataset-option", "num_examples=256"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rng = np.random.default_rng(7)
    finished, kills = False, 0
    for delay in rng.uniform(4, 12, size=3):  # an uninterrupted run takes 10-16 s here, start-up included
        if os.path.exists(os.path.join(out, "metrics.json")):
            break  # the last kill came after the run wrote its results, while the process was exiting
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            assert process.returncode == 0, process.stderr.read().decode()[-2000:]
            finished = True
            break
        finally:
            process.stderr.close()
    if not finished:  # the same command once more: it resumes, or it refuses the run that finished before its kill
        done = os.path.exists(os.path.join(out, "metrics.json"))
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == (2 if done else 0), result.stderr[-2000:]
        assert not done or "holds a finished run" in result.stderr
    assert kills >= 1
    report = json.load(open(os.path.join(out, "metrics.json")))
    assert np.isfinite(report["test"]["loss"])
    assert runs.load_model(os.path.join(out, "model.keras")).count_params() > 0
    assert os.listdir(os.path.join(out, "export", "additive_fusion")) == ["1"]
    assert not os.path.exists(os.path.join(out, "backup")) and not os.path.exists(os.path.join(out, ".lock"))
    assert not glob.glob(os.path.join(out, "**", ".*tmp-*"), recursive=True)
    tf.saved_model.load(os.path.join(out, "export", "additive_fusion", "1"))
