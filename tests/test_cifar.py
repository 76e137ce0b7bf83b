"""`cifar10` / `cifar100`: the JPEG archive in $MULTISENSORY_DATA, and the pickle, npz and folder layouts."""

import pickle

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets
from multisensory.datasets import cifar


def fake_images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype("int32")


def test_real_archive_class_counts(data_dir):
    splits = cifar.read_splits(data_dir, "cifar10")
    assert splits["train"][0].shape == (50_000, 32, 32, 3) and splits["train"][0].dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(splits["train"][1]), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(splits["test"][1]), [1000] * 10)
    x, y = next(iter(datasets.load("cifar10", "validation", data_dir=data_dir, batch_size=5000)))
    assert x["image"].shape == (5000, 32, 32, 3) and x["image"].dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(x["image"])) and float(tf.reduce_max(x["image"])) <= 255.0  # the model scales
    assert len(np.unique(y.numpy())) == 10


def test_pickle_layout_cifar10(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images, labels = fake_images(4, i)
        written[name] = images, labels
        rows = images.transpose(0, 3, 1, 2).reshape(4, 3072)  # the official layout: channel planes per row
        (folder / name).write_bytes(pickle.dumps({"data": rows, "labels": labels.tolist()}, protocol=2))
    splits = cifar.read_splits(str(tmp_path), "cifar10")
    np.testing.assert_array_equal(splits["test"][0], written["test_batch"][0])
    np.testing.assert_array_equal(splits["train"][1][:4], written["data_batch_1"][1])
    ds = datasets.load("cifar10", "train", data_dir=str(tmp_path), validation_size=5, batch_size=100)
    assert sum(int(y.shape[0]) for _, y in ds) == 15


def test_pickle_layout_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        images, _ = fake_images(6, 0)
        rows = images.transpose(0, 3, 1, 2).reshape(6, 3072)
        (folder / name).write_bytes(pickle.dumps({"data": rows, "fine_labels": [99, 0, 1, 2, 3, 4],
                                                  "coarse_labels": [19, 0, 0, 0, 0, 0]}))
    splits = cifar.read_splits(str(tmp_path), "cifar100")
    assert splits["test"][1].tolist() == [99, 0, 1, 2, 3, 4]
    assert datasets.info("cifar100").task.num_classes == 100


def test_npz_layout(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (xtr, ytr), (xte, yte) = fake_images(8, 1), fake_images(3, 2)
    np.savez(tmp_path / "cifar10" / "cifar10.npz", x_train=xtr, y_train=ytr[:, None], x_test=xte, y_test=yte[:, None])
    splits = cifar.read_splits(str(tmp_path), "cifar10")
    np.testing.assert_array_equal(splits["train"][0], xtr)
    np.testing.assert_array_equal(splits["test"][1], yte)


def test_image_folder_layout_is_pixel_exact_with_png(tmp_path):
    images, labels = fake_images(10, 3)
    for i, (image, label) in enumerate(zip(images, labels)):
        for split in ("train", "test"):
            path = tmp_path / "cifar10" / split / cifar.CIFAR10_CLASSES[label] / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tf.io.encode_png(image).numpy())
    for name in cifar.CIFAR10_CLASSES:  # every class folder exists, some empty
        (tmp_path / "cifar10" / "train" / name).mkdir(parents=True, exist_ok=True)
    splits = cifar.read_splits(str(tmp_path), "cifar10")
    order = sorted(range(10), key=lambda i: (cifar.CIFAR10_CLASSES[labels[i]], i))
    np.testing.assert_array_equal(splits["test"][0], images[order])
    np.testing.assert_array_equal(splits["test"][1], labels[order])


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)cifar-100-python.*cifar100.npz"):
        datasets.load("cifar100", "train", data_dir=str(tmp_path))


def test_validation_size_is_checked_against_the_training_images(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (xtr, ytr), (xte, yte) = fake_images(8, 1), fake_images(3, 2)
    np.savez(tmp_path / "cifar10" / "cifar10.npz", x_train=xtr, y_train=ytr[:, None], x_test=xte, y_test=yte[:, None])
    for bad in (-5, 0, 8, 20, 2.5):
        with pytest.raises(ValueError, match=r"validation_size must be a whole number of training images from 1 to 7 "
                                             r"\(held out of 8\)"):
            datasets.load("cifar10", "train", data_dir=str(tmp_path), validation_size=bad)
    batches = list(datasets.load("cifar10", "validation", data_dir=str(tmp_path), validation_size=3, batch_size=8))
    assert sum(len(y) for _, y in batches) == 3
