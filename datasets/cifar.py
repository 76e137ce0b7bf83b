"""`cifar10` and `cifar100`: 32x32 colour images in 10 or 100 classes (Krizhevsky 2009), one modality `image`.

The multiplicative-combination paper (Liu et al. 2018, section 4.2) treats the three residual stages of a ResNet
as its "modalities"; that is the model's business, the dataset is plain images and labels.

Files under `<data_dir>/<name>/`, in this order of preference:
- the pickled batches that `keras.datasets` extracts: `cifar-10-batches-py/data_batch_1..5` + `test_batch`, or
  `cifar-100-python/train` + `test` (fine labels), read with the restricted unpickler (`safe_pickle`);
- `<name>.npz` with `x_train`, `y_train`, `x_test`, `y_test` (uint8, N x 32 x 32 x 3);
- image folders `train/<class>/*.jpg|png` and `test/<class>/*.jpg|png`, or a `.tar.gz` archive holding them (the
  JPEG copy in the shared data). Class folders are named as in the official label order (CIFAR-10: airplane ...
  truck; CIFAR-100: the fine label names, whose official order is alphabetical).

CIFAR has no validation split: `validation_size` training images (default 5,000) are held out by a seeded
permutation. Pixels are float32 in [0, 1].
"""

import glob
import os
import tarfile

import numpy as np
import tensorflow as tf

from . import safe_pickle
from .files import DataFileError, cache_watching, check_labels, check_uint8_pixels, reading, regular_file
from .dataset_info import DatasetInfo, Modality, Task
from .registry import array_source, missing_files_error, register_dataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
VALIDATION_SIZE = 5000
_PICKLES = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
            "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels")}


def _info(name, num_classes):
    folder, train_files, test_files, _ = _PICKLES[name]
    return DatasetInfo(
        name=name,
        modalities=(Modality("image", (32, 32, 3), "float32", "image",
                             "RGB pixel values 0-255 (the model scales them)",
                             standardize={"mean": [0.0] * 3, "std": [255.0] * 3}),),
        task=Task("classification", num_classes=num_classes, metrics=("accuracy", "error", "auc")),
        splits={"train": 50_000 - VALIDATION_SIZE, "validation": VALIDATION_SIZE, "test": 10_000},
        license="CIFAR terms of use: cite Krizhevsky (2009).",
        citation="Krizhevsky (2009), Learning Multiple Layers of Features from Tiny Images.",
        source="https://www.cs.toronto.edu/~kriz/cifar.html",
        files=(f"  {name}/{folder}/{{{','.join(train_files + test_files)}}}   pickled batches (keras.datasets)\n"
               f"  or {name}/{name}.npz                 x_train, y_train, x_test, y_test\n"
               f"  or {name}/train/<class>/*.jpg and {name}/test/<class>/*.jpg, or a .tar.gz holding them"),
    )


INFOS = {"cifar10": _info("cifar10", 10), "cifar100": _info("cifar100", 100)}


def _from_pickles(folder, train_files, test_files, label_key, num_classes):
    def batch(path):
        with reading(path):
            content = safe_pickle.load(path)
            images = np.asarray(content["data"]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return check_uint8_pixels(images, path, "data"), check_labels(content[label_key], num_classes, path)

    def read(files):
        batches = [batch(os.path.join(folder, f)) for f in files]
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    return {"train": read(train_files), "test": read(test_files)}


def _from_npz(path, num_classes):
    with reading(regular_file(path)), np.load(path, allow_pickle=False) as f:
        return {s: (check_uint8_pixels(f[f"x_{s}"], path, f"x_{s}"), check_labels(f[f"y_{s}"], num_classes, path))
                for s in ("train", "test")}


def _read_bytes(path):
    with reading(regular_file(path)), open(path, "rb") as f:
        return f.read()


def _decode(blobs, names, root):
    """uint8 images (n, 32, 32, 3) of encoded `blobs`; a file that does not decode is named in the error."""
    decoded = tf.data.Dataset.from_tensor_slices(blobs).map(
        lambda b: tf.io.decode_image(b, channels=3, expand_animations=False),
        num_parallel_calls=tf.data.AUTOTUNE).batch(4096)
    try:
        return np.concatenate([batch.numpy() for batch in decoded])
    except tf.errors.InvalidArgumentError:
        for blob, name in zip(blobs, names):
            try:
                image = tf.io.decode_image(blob, channels=3, expand_animations=False)
            except tf.errors.InvalidArgumentError as error:
                raise DataFileError(f"'{root}': '{name}' is not a readable image: {error.message}") from None
            if tuple(image.shape) != (32, 32, 3):
                raise DataFileError(f"'{root}': '{name}' is {image.shape[1]}x{image.shape[0]}; CIFAR images are "
                                    "32x32.") from None
        raise


def _image_files(root):
    """({(split, class, file name): bytes}, class folder names) of the image folders under `root`.

    `root` is a folder or a .tar.gz archive holding `train/<class>/` and `test/<class>/`.
    """
    files, classes = {}, set()

    def visit(parts, is_dir, read):
        if is_dir and len(parts) >= 2 and parts[-2] in ("train", "test"):
            classes.add(parts[-1])
        elif not is_dir and len(parts) >= 3 and parts[-3] in ("train", "test") and \
                parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            classes.add(parts[-2])
            files[tuple(parts[-3:])] = read()

    if os.path.isdir(root):
        for directory, subdirs, names in os.walk(root):
            parts = os.path.relpath(directory, root).split(os.sep)
            for d in subdirs:
                visit(parts + [d], True, None)
            for n in names:
                visit(parts + [n], False, lambda path=os.path.join(directory, n): _read_bytes(path))
        return files, classes
    with reading(regular_file(root)), tarfile.open(root) as archive:
        for member in archive:
            visit(member.name.rstrip("/").split("/"), member.isdir(),
                  lambda m=member: archive.extractfile(m).read())
    return files, classes


def _from_images(root, name, num_classes):
    files, classes = _image_files(root)
    classes = sorted(classes)
    if name == "cifar10" and set(classes) == set(CIFAR10_CLASSES):
        classes = list(CIFAR10_CLASSES)
    if len(classes) != num_classes:
        raise ValueError(f"Dataset '{name}': '{root}' has {len(classes)} class folders; expected {num_classes}.")
    splits = {}
    for split in ("train", "test"):
        keys = sorted(k for k in files if k[0] == split)
        images = _decode([files[k] for k in keys], ["/".join(k) for k in keys], root)
        splits[split] = images, np.array([classes.index(k[1]) for k in keys], dtype="int32")
    return splits


@cache_watching(lambda data_dir, name: [os.path.join(data_dir, name)])
def read_splits(data_dir, name):
    """{"train": (images uint8 (n, 32, 32, 3), labels), "test": (...)} from the first layout found."""
    folder = os.path.join(data_dir, name)
    pickle_dir, train_files, test_files, label_key = _PICKLES[name]
    num_classes = INFOS[name].task.num_classes
    if all(os.path.isfile(os.path.join(folder, pickle_dir, f)) for f in train_files + test_files):
        return _from_pickles(os.path.join(folder, pickle_dir), train_files, test_files, label_key, num_classes)
    if os.path.isfile(os.path.join(folder, f"{name}.npz")):
        return _from_npz(os.path.join(folder, f"{name}.npz"), num_classes)
    if os.path.isdir(os.path.join(folder, "train")):
        return _from_images(folder, name, num_classes)
    archives = sorted(glob.glob(os.path.join(folder, "*.tar.gz")))
    if archives:
        return _from_images(archives[0], name, num_classes)
    raise missing_files_error(INFOS[name], data_dir, [f"{name}/ (pickled batches, {name}.npz, image folders or a "
                                                      ".tar.gz of them)"])


def _to_float(features):
    return {"image": tf.cast(features["image"], tf.float32)}


def _loader(name):
    def load_split(split, data_dir, seed=0, validation_size=VALIDATION_SIZE):
        """Loader of CIFAR; `validation_size` training images are held out for validation."""
        splits = read_splits(os.path.abspath(data_dir), name)
        images, labels = splits["test" if split == "test" else "train"]
        if isinstance(validation_size, bool) or int(validation_size) != validation_size or not (
                0 < validation_size < len(splits["train"][1])):
            raise ValueError(f"{name}: validation_size must be a whole number of training images from 1 to "
                             f"{len(splits['train'][1]) - 1} (held out of {len(splits['train'][1])}), got "
                             f"{validation_size!r}.")
        validation_size = int(validation_size)
        if split != "test":
            order = np.random.default_rng([seed, 3]).permutation(len(labels))
            keep = order[:validation_size] if split == "validation" else order[validation_size:]
            images, labels = images[keep], labels[keep]
        return array_source({"image": images}, labels, transform=_to_float)

    return load_split


for _name, _dataset_info in INFOS.items():
    register_dataset(_dataset_info, _loader(_name))
