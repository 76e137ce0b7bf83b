"""Bad input fails at the boundary with a message that names what is wrong."""

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="Missing modality 'audio'"):
        model.predict({"image": features["image"]}, verbose=0)


def test_extra_modality(model, features):
    with pytest.raises(ValueError, match="Unexpected modality 'video'"):
        model({**features, "video": features["image"]})


def test_wrong_shape_names_the_modality(model, features):
    with pytest.raises(ValueError, match=r"Modality 'audio': expected shape \(batch, 20, 32\), got \(4, 20, 31\)"):
        model({**features, "audio": features["audio"][..., :31]})
    with pytest.raises(ValueError, match="Modality 'image': expected shape"):
        model.predict({**features, "image": features["image"][..., 0]}, verbose=0)


def test_wrong_dtype_names_the_modality(model, features):
    with pytest.raises(TypeError, match="Modality 'image': expected a floating-point tensor.*int32"):
        model({**features, "image": features["image"].astype("int32")})
    with pytest.raises(TypeError, match="Modality 'image'"):
        model.predict({**features, "image": features["image"].astype("uint8")}, verbose=0)


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
