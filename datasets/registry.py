"""The dataset registry: `load(name, split, ...)`, `info(name)`, `list_datasets(pattern)`.

A dataset registers its `DatasetInfo` and a loader `loader(split, data_dir, seed, **options) -> Source`. A `Source`
knows how many examples a split has and how to fetch a batch of them by index; `load` adds shuffling, batching,
noise and prefetching the same way for every dataset.
"""

import dataclasses
import fnmatch
import hashlib
import inspect
import os
from collections.abc import Callable

import tensorflow as tf

from . import noise as noise_lib

DATA_ENV = "MULTISENSORY_DATA"
SPLITS = ("train", "validation", "test")

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class Source:
    """One split of a dataset, ready to be batched.

    Some datasets' noise acts before a preprocessing step (Barnum et al. add `av_mnist`'s audio noise to the
    recording, before padding and the spectrogram). Such a source names those `raw_modalities` and gives `raw`, a
    function returning its `RawDomain`; `load` calls it (and so builds what it holds) only when noise is asked for
    one of them. Without such noise `fetch` gives the same features as `finish(raw.fetch(...))`.

    Args:
        size: int. Number of examples.
        fetch: callable. Maps an int64 tensor of example indices (batch,) to `({modality: tensor}, labels)`.
        raw: callable or None. Returns the source's `RawDomain`.
        raw_modalities: tuple of str. The modalities whose noise acts in the raw domain.
        lengths: callable or None. Maps example indices (batch,) to `{modality: real steps (batch,)}` of the
            variable-length modalities whose lengths the files give; their noise goes on those steps only
            (`multisensory.datasets.noise`).
        stream: callable or None. For data read from files as it is used (`multisensory.datasets.shards`):
            `stream(batch_size, shuffle, seed, drop_remainder, lengths=False)` returns the batched `(features,
            labels)` dataset (with `lengths`, `(features, labels, {modality: real steps})` where some modality has a
            variable number of steps), and `fetch` is None.
        portable: bool. Whether the pipeline can run on a tf.data service's workers (`load(data_service=)`): not
            where a Python generator reads the files.
    """

    size: int
    fetch: Callable | None
    raw: Callable | None = None
    raw_modalities: tuple = ()
    lengths: Callable | None = None
    stream: Callable | None = None
    portable: bool = True


@dataclasses.dataclass(frozen=True)
class RawDomain:
    """Where a source's noise acts before its preprocessing (see `Source`).

    Args:
        fetch: callable. As `Source.fetch`, with features in an intermediate form.
        noise: dict. Modality to its noise `noise(features, snr, seed) -> features` on that form.
        finish: callable. Maps intermediate features to the dataset's features.
    """

    fetch: Callable
    noise: dict
    finish: Callable


def array_source(features, labels, transform=None, lengths=None):
    """A `Source` over in-memory arrays: `features` {modality: array (n, ...)} and `labels` (n,).

    `transform`, if given, maps each fetched feature dict to the dataset's features (e.g. uint8 to float pixels).
    `lengths`, if given, is {modality: (n,) real steps} of front-padded sequences (`Source.lengths`).
    """
    features = {k: tf.constant(v) for k, v in features.items()}
    labels = tf.constant(labels)
    steps = {k: tf.constant(v, tf.int32) for k, v in (lengths or {}).items()}

    def fetch(indices):
        batch = {k: tf.gather(v, indices) for k, v in features.items()}
        return (transform(batch) if transform else batch), tf.gather(labels, indices)

    return Source(int(labels.shape[0]), fetch,
                  lengths=(lambda indices: {k: tf.gather(v, indices) for k, v in steps.items()}) if steps else None)


def register_dataset(info, loader, describe=None):
    """Registers `loader(split, data_dir, seed, **options) -> Source` under `info.name`.

    `describe(data_dir, **options) -> DatasetInfo`, for datasets whose public files come in several feature sets
    (e.g. GloVe or BERT text features), gives the info of the files actually present.
    """
    _REGISTRY[info.name] = (info, loader, describe)
    return loader


def list_datasets(pattern="*"):
    """Registered dataset names matching a shell-style wildcard pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def info(name, data_dir=None, **options):
    """The `DatasetInfo` of a registered dataset.

    Some datasets describe the files found in a data directory: feature sizes and sequence length of `mosi`,
    `mosei`, `ur_funny`; the training statistics `higgs` models standardise with. They read `data_dir`, else
    `$MULTISENSORY_DATA` when its files are there; otherwise every dataset gives its documented default.
    """
    dataset_info, _, describe = _lookup(name)
    if describe is None:
        return dataset_info
    if data_dir:
        return describe(data_dir, **options)
    try:
        return describe(os.environ[DATA_ENV], **options) if os.environ.get(DATA_ENV) else dataset_info
    except FileNotFoundError:  # the files are elsewhere: the documented default
        return dataset_info


def _lookup(name):
    """(info, loader, describe) of a registered name, or of a dataset folder (`multisensory.datasets.folder`)."""
    from . import folder

    if folder.is_folder_dataset(name):
        return (folder.info(name), lambda split, data_dir=None, seed=0: folder.load_split(name, split),
                lambda data_dir: folder.info(name))
    if name not in _REGISTRY:
        raise ValueError(f"Unknown dataset '{name}'. Available datasets: {', '.join(list_datasets())}, or the path of "
                         "a dataset folder (a folder holding dataset.json).")
    return _REGISTRY[name]


def data_source(name, data_dir=None):
    """{"path", "fingerprint"} of the files dataset `name` reads, which a run records so that a resume or reuse on
    other data is refused: a dataset folder's real path, or the data directory's, and a digest of the size and
    modification time of every file under the dataset's folders there (the first component of each path of its
    documented layout, `DatasetInfo.files`); {"path": None, "fingerprint": None} for generated data."""
    from . import folder
    from .files import fingerprint

    if folder.is_folder_dataset(name):
        root = os.path.dirname(os.path.realpath(folder._spec_path(name)))
        folders = [root]
    else:
        dataset_info = _lookup(name)[0]
        if not dataset_info.files.strip():
            return {"path": None, "fingerprint": None}
        root = os.path.realpath(resolve_data_dir(dataset_info, data_dir))
        tops = {next(t for t in line.split() if "/" in t).split("/")[0]
                for line in dataset_info.files.splitlines() if "/" in line}
        folders = [os.path.join(root, top) for top in sorted(tops)]
    digest = hashlib.sha256()
    for path, size, mtime in fingerprint(*folders):
        digest.update(f"{os.path.relpath(path, root)}\0{size}\0{mtime}\n".encode())
    return {"path": root, "fingerprint": digest.hexdigest()[:16]}


def resolve_data_dir(dataset_info, data_dir=None):
    """The directory a dataset's files are read from: `data_dir`, else `$MULTISENSORY_DATA`.

    Raises:
        FileNotFoundError: neither is set, or the directory does not exist; the message shows the expected layout.
    """
    data_dir = data_dir or os.environ.get(DATA_ENV)
    if not data_dir or not os.path.isdir(data_dir):
        where = (f"no data directory given (--data-dir or ${DATA_ENV})" if not data_dir else
                 f"'{data_dir}' is a file, not a directory" if os.path.exists(data_dir) else
                 f"'{data_dir}' does not exist")
        raise FileNotFoundError(
            f"Dataset '{dataset_info.name}': {where}. Expected layout under the data directory:\n"
            f"{dataset_info.files}\nSource: {dataset_info.source}")
    return data_dir


def missing_files_error(dataset_info, data_dir, missing):
    """The error raised by loaders when expected files are absent."""
    return FileNotFoundError(
        f"Dataset '{dataset_info.name}': missing under '{data_dir}': {', '.join(missing)}. "
        f"Expected layout:\n{dataset_info.files}\nSource: {dataset_info.source}")


def load(name, split, data_dir=None, batch_size=32, noise=None, dropout=None, drop=(), corruptions=None, seed=0,
         shuffle=None, drop_remainder=False, data_service=None, **options):
    """A batched, prefetched `tf.data.Dataset` of `({modality: tensor}, label)`.

    Args:
        name: str. A registered dataset (`list_datasets()`).
        split: str. `"train"`, `"validation"` or `"test"`.
        data_dir: str. Directory of the dataset's files; defaults to `$MULTISENSORY_DATA`.
        batch_size: int. Examples per batch.
        noise: dict. Modality to SNR (power ratio) of added white noise (see `multisensory.datasets.noise`).
        dropout: dict. Modality to probability of zeroing it per example.
        drop: iterable of str. Modalities zeroed in every example.
        corruptions: dict. Modality to {corruption: severity in [0, 1]} (see `multisensory.datasets.corruptions`).
        seed: int. Seeds the split's construction (where it is sampled), shuffling and noise.
        shuffle: bool. Reshuffle every epoch; defaults to True for `"train"`. Training noise is redrawn each epoch
            when shuffling, evaluation noise is fixed.
        drop_remainder: bool. Drop the last incomplete batch.
        data_service: str or None. A tf.data service dispatcher ("grpc://host:port", `multisensory data-service`):
            the whole pipeline (reading, noise, dropout) then runs on the service's workers, each producing every
            epoch's batches (`ShardingPolicy.OFF`), and this process only receives them.
        **options: dataset-specific options (e.g. `num_pairs` of `av_mnist`); unknown ones raise `TypeError`.
    """
    dataset_info = _lookup(name)[0]
    if dataset_info.files:
        data_dir = resolve_data_dir(dataset_info, data_dir)
    source = split_source(name, split, data_dir, seed, **options)
    shuffle = split == "train" if shuffle is None else shuffle

    noisy = [m for m, v in (noise or {}).items() if v is not None and v != float("inf")]
    raw = source.raw() if any(m in source.raw_modalities for m in noisy) else None
    if source.stream is not None:
        dataset = source.stream(batch_size, shuffle, seed, drop_remainder, lengths=bool(noisy))
    else:
        indices = tf.data.Dataset.range(source.size)
        if shuffle:
            indices = indices.shuffle(source.size, seed=seed, reshuffle_each_iteration=True)
        fetch = raw.fetch if raw else source.fetch
        if source.lengths is not None and noisy:
            fetch = (lambda f: lambda indices: (*f(indices), source.lengths(indices)))(fetch)
        dataset = indices.batch(batch_size, drop_remainder=drop_remainder).map(
            fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if dropout or drop:  # the absent value of a standardised modality is its training mean, from the data's info
        dataset_info = _described(name, dataset_info, data_dir, options)
    dataset = noise_lib.augment(dataset, dataset_info.modality_names, snr=noise, dropout=dropout, drop=drop,
                                corruptions=corruptions, seed=seed, rerandomize=shuffle,
                                raw_noise=raw.noise if raw else None, finish=raw.finish if raw else None,
                                sequences=[m.name for m in dataset_info.modalities if m.is_sequence],
                                absent=absent_values(dataset_info))
    if data_service:
        if not str(data_service).startswith(("grpc://", "grpc+local://")):
            raise ValueError(f"data_service must be a dispatcher address 'grpc://host:port', got {data_service!r}.")
        if not source.portable:
            raise ValueError(f"Split '{split}' of '{name}' is read by Python (Parquet, .npz or CSV shards), which a "
                             "tf.data service cannot run; convert it to TFRecord shards (multisensory dataset convert) "
                             "to use --data-service.")
        dataset = dataset.apply(tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.OFF, service=data_service))
    return dataset.prefetch(tf.data.AUTOTUNE)


def split_source(name, split, data_dir=None, seed=0, **options):
    """The `Source` of a split that `load` reads (with the same options; unknown ones raise `TypeError`)."""
    dataset_info, loader, _ = _lookup(name)
    if split not in SPLITS:
        raise ValueError(f"Unknown split '{split}' of dataset '{name}'. Splits: {', '.join(SPLITS)}.")
    accepted = [p for p in inspect.signature(loader).parameters if p not in ("split", "data_dir", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"Dataset '{name}' has no option(s) {unknown}; its options are {accepted}.")
    if dataset_info.files:
        data_dir = resolve_data_dir(dataset_info, data_dir)
    return loader(split, data_dir=data_dir, seed=seed, **options)


def split_size(name, split, data_dir=None, seed=0, **options):
    """The number of examples of a split as `load` gives it (with the same options)."""
    return split_source(name, split, data_dir, seed, **options).size


def _described(name, dataset_info, data_dir, options):
    describe = _lookup(name)[2]
    if describe is None or not data_dir:
        return dataset_info
    accepted = inspect.signature(describe).parameters
    return describe(data_dir, **{k: v for k, v in options.items() if k in accepted})


def absent_values(dataset_info):
    """{modality: what a dropped example holds}: the training mean (over the last axis) of each fixed-shape modality
    that the model standardises, so that it reaches the model as 0; others (zeros) are left out."""
    means = {m.name: (m, dict(m.standardize)["mean"]) for m in dataset_info.modalities
             if m.standardize is not None and not m.is_sequence}
    return {name: tf.constant(mean, tf.dtypes.as_dtype(m.dtype)) for name, (m, mean) in means.items() if any(mean)}
