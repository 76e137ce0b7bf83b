"""The pretrained zoo: exports that take what a user has, warmup records, presets with checksums, the wheel."""

import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, exports, zoo
from multisensory.datasets import av_mnist, higgs
from multisensory.training import publishing, runs
from multisensory.training.commands import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_av_mnist_export_takes_pixels_and_recordings_of_any_length(data_dir, tmp_path):
    model = zoo.create("additive_fusion", datasets.info("av_mnist"))
    x, _ = next(iter(datasets.load("av_mnist", "test", data_dir=data_dir, batch_size=4, num_pairs=4, shuffle=False)))
    expected = model.predict(x, verbose=0)
    table = av_mnist.pairs("test", data_dir, 0, 4)
    images, _, _, _, padded, lengths = av_mnist._read_sources(os.path.abspath(data_dir))
    recordings = [padded[i, av_mnist.SAMPLES - lengths[i]:] for i in table["audio_index"]]
    assert len({len(r) for r in recordings}) > 1, "recordings of different lengths in one batch"
    width = max(len(r) for r in recordings)
    audio, mask = np.zeros((4, width), "float32"), np.zeros((4, width), "int32")
    for k, r in enumerate(recordings):
        audio[k, :len(r)], mask[k, :len(r)] = r, 1
    pixels = images[table["image_index"]][..., None].astype("float32")  # 0-255, as MNIST holds them

    features = model.preprocess({"image": pixels, "audio": audio, "audio_mask": mask})
    np.testing.assert_allclose(features["audio"], x["audio"], atol=1e-5)
    signatures = tf.saved_model.load(exports.export_saved_model(model, str(tmp_path))).signatures
    served = signatures["serving_masked"](image=tf.constant(pixels), audio=tf.constant(audio),
                                          audio_mask=tf.constant(mask))
    np.testing.assert_allclose(served["logits"], expected, rtol=1e-5, atol=1e-5)
    for k, r in enumerate(recordings):  # one recording per request: no mask needed
        one = signatures["serving_default"](image=tf.constant(pixels[k:k + 1]), audio=tf.constant(r[None]))
        np.testing.assert_allclose(one["logits"], expected[k:k + 1], rtol=1e-5, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Modality audio: a recording is longer than 18262"):
        signatures["serving_default"](image=tf.constant(pixels[:1]), audio=tf.zeros((1, av_mnist.SAMPLES + 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio_mask must have the shape of audio"):
        signatures["serving_masked"](image=tf.constant(pixels[:1]), audio=tf.constant(audio[:1]),
                                     audio_mask=tf.constant(mask[:1, :10]))


def test_higgs_model_and_export_take_raw_rows(data_dir, tmp_path):
    """The model standardises with the training split's statistics itself: raw rows through the export give what
    the same weights give on rows standardised outside (the pipeline's former preprocessing)."""
    info = datasets.info("higgs", data_dir=data_dir)
    model = zoo.create("higgs_mlp", info)
    splits = higgs.read_splits(data_dir)
    train, rows = splits["train"][0].astype("float64"), splits["test"][0][:16]
    outside = (rows - train.mean(0)) / train.std(0)
    twin = zoo.create("higgs_mlp", higgs.INFO)  # no statistics: takes standardised rows
    twin.set_weights(model.get_weights())
    expected = twin.predict({"low_level": outside[:, :21].astype("float32"),
                             "high_level": outside[:, 21:].astype("float32")}, verbose=0)
    x, _ = next(iter(datasets.load("higgs", "test", data_dir=data_dir, batch_size=16, shuffle=False)))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    serve = tf.saved_model.load(exports.export_saved_model(model, str(tmp_path))).signatures["serving_default"]
    served = serve(low_level=tf.constant(rows[:, :21]), high_level=tf.constant(rows[:, 21:]))
    np.testing.assert_allclose(served["logits"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,dataset", [("late_fusion", "synthetic_av"), ("ef_lstm", "mosei")])
def test_warmup_record_is_a_prediction_log_the_signature_answers(tmp_path, name, dataset):
    """mosei's info without its files has sequences of open length, given one step in the warmup request."""
    from tensorflow_serving.apis import prediction_log_pb2

    model = zoo.create(name, datasets.info(dataset))
    path = exports.export_saved_model(model, str(tmp_path), model_name="late")
    records = list(tf.data.TFRecordDataset(os.path.join(path, exports.WARMUP_FILE)))
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    request = log.predict_log.request
    assert (request.model_spec.name, request.model_spec.signature_name) == ("late", "serving_default")
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    assert {k: v.shape for k, v in inputs.items()} == {m.name: (1,) + tuple(d or 1 for d in m.shape)
                                                       for m in model.modalities}
    served = tf.saved_model.load(path).signatures["serving_default"](**inputs)
    output = "logits" if model.task.type == "classification" else "prediction"
    np.testing.assert_allclose(served[output], model.predict(inputs, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch synthetic_av run (a small model)."""
    out = str(tmp_path_factory.mktemp("run") / "run")
    runs.train("additive_fusion", "synthetic_av", out, epochs=1, batch_size=64, export=False, verbose=0,
               dataset_options={"num_examples": 256})
    return out


def test_a_published_run_loads_by_name_predicts_the_same_and_fine_tunes(run, tmp_path, capsys):
    root = str(tmp_path / "zoo")
    assert main(["publish", "--run", run, "--name", "demo-additive", "--root", root, "--snrs", "inf,0.5"]) == 0
    manifest = exports.read_manifest("demo-additive", root)
    assert manifest["model"] == "additive_fusion" and manifest["version"] == 1
    assert manifest["command"] == ("multisensory train --model additive_fusion --dataset synthetic_av --epochs 1 "
                                   "--batch-size 64 --seed 0 --dataset-option num_examples=256 --patience 10")
    assert (manifest["selection"]["epoch"], manifest["selection"]["epochs_run"]) == (1, 1)
    assert manifest["dataset"]["info"]["modalities"][0]["name"] == "image"
    test = runs.read_json(os.path.join(run, "metrics.json"))["test"]
    assert manifest["metrics"]["test"] == test
    card = manifest["robustness"]
    assert set(card["dropped"]) == {"none", "image", "audio"}
    assert card["dropped"]["none"]["accuracy"] == pytest.approx(test["accuracy"])
    assert card["snr_grid"]["snrs"] == ["original", "0.5"] and len(card["snr_grid"]["values"]) == 2
    assert card["snr_grid"]["values"][0][0] == pytest.approx(test["accuracy"])
    assert set(manifest["files"]) >= {"model.keras", "saved_model.pb", exports.WARMUP_FILE}
    assert manifest["versions"]["tensorflow"] == tf.__version__ and manifest["parameters"] > 0
    with open(os.path.join(root, "models.config")) as f:
        assert f"base_path: '{os.path.join(os.path.abspath(root), 'demo-additive')}'" in f.read()

    original = runs.load_model(os.path.join(run, "model.keras"))
    model = zoo.create("additive_fusion", pretrained="demo-additive", root=root)
    x, y = next(iter(datasets.load("synthetic_av", "test", batch_size=32, num_examples=32)))
    np.testing.assert_array_equal(model.predict(x, verbose=0), original.predict(x, verbose=0))
    served = tf.saved_model.load(os.path.join(root, "demo-additive", "1")).signatures["serving_default"](**x)
    np.testing.assert_allclose(served["logits"], original.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, verbose=0)  # compiled from the preset: ready to fine-tune
    assert np.isfinite(history.history["loss"][0])
    assert any(np.any(a != b) for a, b in zip(before, model.get_weights()))

    assert main(["zoo", "list", "--root", root, "--markdown"]) == 0
    table = capsys.readouterr().out
    assert (f"| demo-additive | 1 | additive_fusion | synthetic_av | accuracy {test['accuracy']:.4f} | "
            f"{test['auc']:.4f} | {card['dropped']['none']['accuracy']:.4f} |") in table

    exports.publish(model, "demo-additive", root, manifest={"model": "additive_fusion"})
    assert exports.list_presets(root) == {"demo-additive": [1, 2]}
    with pytest.raises(ValueError, match="Preset 'demo-additive' is a 'additive_fusion' model, not 'late_fusion'"):
        zoo.create("late_fusion", pretrained="demo-additive", root=root)
    with pytest.raises(ValueError, match="Unknown preset 'demo' under .*Presets: demo-additive"):
        zoo.load_pretrained("demo", root=root)
    with pytest.raises(ValueError, match="A preset fixes its model's configuration"):
        zoo.create("additive_fusion", pretrained="demo-additive", root=root, width=8)
    with pytest.raises(ValueError, match="has no version 7; its versions are \\[1, 2\\]"):
        zoo.load_pretrained("demo-additive", root=root, version=7)


def test_a_preset_name_must_be_one_folder_name_before_anything_is_written(tmp_path):
    model = zoo.create("early_fusion", datasets.info("synthetic_av"))
    model.compile()
    root = tmp_path / "zoo"
    root.mkdir()
    for bad in ("", "../evil", "a/b", ".."):
        with pytest.raises(ValueError, match="must be one folder name"):
            exports.publish(model, bad, str(root))
    assert not list(root.iterdir()) and not (tmp_path / "evil").exists()


def test_tampered_presets_are_refused_naming_the_file(tmp_path, monkeypatch):
    root = str(tmp_path)
    model = zoo.create("early_fusion", datasets.info("synthetic_av"))
    model.compile()
    folder = exports.publish(model, "early", root, manifest={"model": "early_fusion"})
    monkeypatch.setenv(exports.presets.ZOO_ENV, root)
    assert zoo.load_pretrained("early").count_params() == model.count_params()  # the root from the environment

    path = os.path.join(folder, "model.keras")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="'model.keras' does not match its SHA-256"):
        zoo.load_pretrained("early")
    data[len(data) // 2] ^= 1
    open(path, "wb").write(bytes(data))
    zoo.load_pretrained("early")  # restored: loads again

    open(os.path.join(folder, "variables", "extra.bin"), "wb").write(b"x")
    with pytest.raises(ValueError, match="'variables/extra.bin' is not in the manifest"):
        zoo.load_pretrained("early")
    os.remove(os.path.join(folder, "variables", "extra.bin"))
    os.remove(os.path.join(folder, exports.WARMUP_FILE))
    with pytest.raises(ValueError, match="'assets.extra/tf_serving_warmup_requests' is missing"):
        zoo.load_pretrained("early")
    monkeypatch.delenv(exports.presets.ZOO_ENV)
    with pytest.raises(ValueError, match="No preset root given: .*MULTISENSORY_ZOO"):
        zoo.load_pretrained("early")


def test_the_wheel_installs_and_runs_without_the_source_tree(tmp_path):
    """`pip wheel` builds from pyproject.toml; the wheel goes into a fresh venv whose only other packages are the
    project's dependencies (this environment's site-packages as a plain path entry: its editable hook is not run),
    and runs from a folder outside the repository."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), REPO], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("multisensory-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    fresh_site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(fresh_site, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    listed = subprocess.run([str(venv / "bin" / "multisensory"), "list"], check=True, capture_output=True,
                            text=True, cwd=tmp_path, env=env).stdout
    assert "additive_fusion" in listed and "av_mnist" in listed
    script = ("import multisensory.zoo as z, multisensory.datasets as d; "
              "m = z.create('late_fusion', d.info('synthetic_av')); print(z.__file__, m.count_params())")
    out = subprocess.run([python, "-c", script], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env=env).stdout.split()
    assert out[0].startswith(fresh_site) and not out[0].startswith(REPO), out
    assert int(out[1]) == zoo.create("late_fusion", datasets.info("synthetic_av")).count_params()
    # the README's tuning example's tuner (bayesian: SciPy and scikit-learn, from the project's requirements)
    tuned = subprocess.run([str(venv / "bin" / "multisensory"), "tune", "--model", "additive_fusion", "--dataset",
                            "synthetic_av", "--tuner", "bayesian", "--max-trials", "1", "--epochs", "1", "--config",
                            "width=8", "--dataset-option", "num_examples=64", "--directory", str(tmp_path / "studies"),
                            "--json", "--quiet"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert 0 <= json.loads(tuned.stdout)["test"]["accuracy"] <= 1


def test_preset_rows_format_as_a_table():
    rows = [{"preset": "p", "version": 1, "model": "m", "dataset": "d", "metric": "accuracy", "test": 0.5,
             "auc": None, "clean": 0.75, "parameters": 1234, "dropped": {"a": 0.25}, "snr_grid": None,
             "epochs": publishing._epochs({"training": {"epochs": 40},
                                           "selection": {"epoch": 8, "epochs_run": 11}})}]
    assert publishing.format_rows(rows, markdown=True).splitlines()[2] == (
        "| p | 1 | m | d | accuracy 0.5000 | - | 0.7500 | 1,234 | -a: 0.2500 | - | 8 / 11 / 40 |")
    assert publishing._epochs({"training": {"epochs": 40}}) == "40"  # a manifest from before selections


def test_a_root_can_be_any_gfile_uri():
    model = zoo.create("late_fusion", datasets.info("synthetic_av"))
    root = "ram://presets-test"
    assert exports.publish(model, "late", root, manifest={"model": "late_fusion"}) == f"{root}/late/1"
    assert exports.list_presets(root) == {"late": [1]}
    x, _ = next(iter(datasets.load("synthetic_av", "test", batch_size=4, num_examples=4)))
    loaded = zoo.create("late_fusion", pretrained="late", root=root)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with tf.io.gfile.GFile(f"{root}/models.config") as f:
        assert f"base_path: '{root}/late'" in f.read()


def test_a_preset_whose_model_reads_a_file_outside_it_is_refused(tmp_path):
    """A lookup layer's vocabulary given as a path is read at load time: with checksums that match (the preset's
    writer chose them), the file outside the preset is still never read."""
    import json as json_lib
    import zipfile

    from multisensory.exports import presets

    model = zoo.create("early_fusion", datasets.info("synthetic_av"))
    model.compile()
    folder = exports.publish(model, "early", str(tmp_path), manifest={"model": "early_fusion"})
    path = os.path.join(folder, "model.keras")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json_lib.loads(members["config.json"])
    config["config"]["lookup"] = {"class_name": "StringLookup", "config": {"vocabulary": "/etc/hostname"}}
    members["config.json"] = json_lib.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    manifest_path = os.path.join(folder, "manifest.json")
    manifest = json_lib.loads(open(manifest_path).read())
    manifest["files"]["model.keras"] = presets.sha256(open(path, "rb").read())
    open(manifest_path, "w").write(json_lib.dumps(manifest))
    assert presets.external_files(path) == ["/etc/hostname"]
    with pytest.raises(presets.PresetError, match=r"reads file\(s\) outside the preset \('/etc/hostname'\)"):
        zoo.load_pretrained("early", root=str(tmp_path))
