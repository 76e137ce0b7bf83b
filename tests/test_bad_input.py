"""Bad input fails at the boundary with a message that names what is wrong."""

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets, zoo
from multisensory.datasets.synthetic_av import generate


@pytest.fixture(scope="module")
def model():
    return zoo.create("additive_fusion", "synthetic_av", width=8, hidden=(8,))


@pytest.fixture(scope="module")
def features():
    return generate(4, seed=0)[0]


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown model 'resnet'. Available models: " + ", ".join(zoo.list_models())):
        zoo.create("resnet", "synthetic_av")


def test_unknown_config_key_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"no configuration key\(s\) \['widht'\].*'width'"):
        zoo.create("additive_fusion", "synthetic_av", widht=3)


def test_unknown_dataset_split_and_option():
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'. Available datasets: " + ", ".join(
            datasets.list_datasets())):
        datasets.load("mnist", "train")
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        datasets.info("mnist")
    with pytest.raises(ValueError, match="Unknown split 'training'.*train, validation, test"):
        datasets.load("synthetic_av", "training")
    with pytest.raises(TypeError, match=r"no option\(s\) \['num_pairs'\].*num_examples"):
        datasets.load("synthetic_av", "train", num_pairs=3)


def test_missing_data_directory_explains_the_layout(monkeypatch, tmp_path):
    monkeypatch.delenv("MULTISENSORY_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"(?s)no data directory given.*MULTISENSORY_DATA.*mnist/mnist\.npz"):
        datasets.load("av_mnist", "train")
    with pytest.raises(FileNotFoundError, match=r"(?s)does not exist.*fsdd/recordings"):
        datasets.load("av_mnist", "train", data_dir=str(tmp_path / "nowhere"))


def test_missing_modality(model, features):
    with pytest.raises(ValueError, match="Missing modality 'audio'"):
        model({"image": features["image"]})
    for predict in (model.predict, model.predict_on_batch):
        with pytest.raises(ValueError, match="Missing modality 'audio'"):
            predict({"image": features["image"]})


def test_extra_modality(model, features):
    with pytest.raises(ValueError, match="Unexpected modality 'video'"):
        model({**features, "video": features["image"]})


def test_wrong_shape_names_the_modality(model, features):
    with pytest.raises(ValueError, match=r"Modality 'audio': expected shape \(batch, 20, 32\), got \(4, 20, 31\)"):
        model({**features, "audio": features["audio"][..., :31]})
    for predict in (model.predict, model.predict_on_batch):
        with pytest.raises(ValueError, match="Modality 'image': expected shape"):
            predict({**features, "image": features["image"][..., 0]})


def test_wrong_dtype_names_the_modality(model, features):
    with pytest.raises(TypeError, match="Modality 'image': expected a floating-point tensor.*int32"):
        model({**features, "image": features["image"].astype("int32")})
    for predict in (model.predict, model.predict_on_batch):
        with pytest.raises(TypeError, match="Modality 'image'"):
            predict({**features, "image": features["image"].astype("uint8")})


def test_not_a_dict(model, features):
    with pytest.raises(TypeError, match=r"Expected a dict \{modality: tensor\} with keys \['image', 'audio'\]"):
        model(features["image"])


def test_fit_on_a_mismatched_dataset_fails_before_training(model):
    data = datasets.load("synthetic_av", "train", num_examples=8, drop=()).map(
        lambda x, y: ({"image": x["image"]}, y))
    model.compile()
    with pytest.raises(ValueError, match="Missing modality 'audio'"):
        model.fit(data, epochs=1, verbose=0)
    np.testing.assert_equal(model.optimizer.iterations.numpy(), 0)


def test_predict_refuses_non_finite_inputs_naming_the_modality(model, features):
    for value in (np.nan, np.inf):
        bad = {**features, "audio": features["audio"].copy()}
        bad["audio"][1, 2, 3] = value
        for predict in (model.predict, model.predict_on_batch):
            with pytest.raises(tf.errors.InvalidArgumentError, match="Modality 'audio': the input holds NaN or infinite"):
                predict(bad)
    assert np.isfinite(model.predict(features, verbose=0)).all()
    assert np.isfinite(model.predict_on_batch(features)).all()


def test_fit_and_evaluate_refuse_non_finite_inputs_and_keep_the_weights(model, features):
    labels = np.arange(len(next(iter(features.values())))) % 10
    bad = {**features, "audio": features["audio"].copy()}
    bad["audio"][1, 2, 3] = np.nan
    model.compile()
    before = model.get_weights()
    for run in (lambda: model.evaluate(bad, labels, verbose=0), lambda: model.fit(bad, labels, verbose=0)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="Modality 'audio': the input holds NaN or infinite"):
            run()
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert np.isfinite(model.evaluate(features, labels, verbose=0)).all()


def test_the_shape_check_holds_after_a_relaxed_retrace(model, features):
    """predict retraces with relaxed shapes after a second batch size: the frame count is still checked."""
    for n in (4, 3, 2):
        model.predict({k: v[:n] for k, v in features.items()}, verbose=0)
    short = tf.data.Dataset.from_tensor_slices({**features, "audio": features["audio"][:, :10]}).batch(3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Modality audio: expected shape \(batch, 20, 32\); got sizes.*\[10\]"):
        model.predict(short, verbose=0)


def test_empty_and_mismatched_batches_are_refused_up_front(model, features):
    for predict in (model.predict, model.predict_on_batch):
        with pytest.raises(ValueError, match="No example to predict"):
            predict({k: v[:0] for k, v in features.items()})
        with pytest.raises(ValueError, match=r"different batch sizes: \{'image': 4, 'audio': 2\}"):
            predict({**features, "audio": features["audio"][:2]})
    with pytest.raises(ValueError, match="different batch sizes"):
        model({**features, "audio": features["audio"][:2]})


def test_the_export_refuses_non_finite_inputs(model, features, tmp_path):
    from multisensory.exports import export_saved_model

    serve = tf.saved_model.load(export_saved_model(model, str(tmp_path))).signatures["serving_default"]
    assert np.isfinite(serve(**{k: tf.constant(v) for k, v in features.items()})["logits"].numpy()).all()
    bad = {**features, "image": features["image"].copy()}
    bad["image"][0, 0, 0, 0] = np.inf
    with pytest.raises(tf.errors.InvalidArgumentError, match="Modality 'image': the input holds NaN or infinite"):
        serve(**{k: tf.constant(v) for k, v in bad.items()})


def test_a_damaged_keras_file_is_one_error_naming_it(model, features, tmp_path):
    from multisensory.training import commands, runs

    model.predict(features, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    data = bytearray(open(path, "rb").read())
    truncated, corrupt = tmp_path / "truncated.keras", tmp_path / "corrupt.keras"
    truncated.write_bytes(data[: len(data) // 2])
    import zipfile

    with zipfile.ZipFile(path) as archive:  # the archive stays a zip; the weights inside are garbage
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = next(name for name in members if name.endswith(".h5"))
    members[weights] = members[weights][:512] + bytes(range(256)) * ((len(members[weights]) - 512) // 256)
    with zipfile.ZipFile(corrupt, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    for damaged in (truncated, corrupt):
        with pytest.raises(ValueError, match=f"'{damaged}' (is not a readable .keras archive|cannot be loaded)"):
            runs.load_model(str(damaged))
        for argv in (["evaluate", "--model-path", str(damaged), "--dataset", "synthetic_av"],
                     ["export", "--model-path", str(damaged), "--out", str(tmp_path / "serving")]):
            assert commands.main(argv) == 2
