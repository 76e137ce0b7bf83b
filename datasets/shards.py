"""Datasets larger than memory: a dataset folder whose splits are shards (TFRecord, Parquet, `.npz` or tables),
streamed by `tf.data`.

A spec names each split's shards by a glob or a list of file names (inside the folder):

    "files": {"train": "train-*.tfrecord", "validation": "validation-*.tfrecord", "test": ["test-0.tfrecord"]},
    "examples": {"train": 900000, "validation": 50000, "test": 50000},     (optional: counted once otherwise)
    "shuffle_buffer": 10000                                                  (optional: examples in the buffer)

TFRecord shards (the zoo's native large-data format) hold `tf.train.Example`s with one feature per modality (its
values flattened row-major: a float list, or an int64 list for integer dtypes) and the label (`"label"`, or the spec's
`label`: int64 for classification, float for regression). `multisensory dataset convert SRC DST --shards N` writes any
dataset so (`write`), in one pass over batches, never holding the dataset. Shards in the other formats of a dataset
folder (`.parquet`, `.npz`, `.csv`/`.tsv`/`.txt`, laid out as one file of `multisensory.datasets.folder`) are read a
shard at a time, with the folder's checks, by a Python reader inside the pipeline: memory is bounded by the shards read
at once (`PARALLEL_SHARDS`) and the shuffle buffer, so keep such shards to a few hundred MB; TFRecord is faster.

Reading (`stream_source`): the shard list is reshuffled every epoch from the seed, shards are read in parallel and
interleaved, examples pass a shuffle buffer (the seed's, reshuffled each epoch), then are batched and parsed: memory
stays bounded by the buffer and the prefetched batches, whatever the data's size, and a seed gives the same order.
Evaluation splits (no shuffling) are read shard after shard in the listed order. Under a multi-worker strategy
`tf.data` shards such a pipeline by file (its AUTO policy), each worker reading its own shards; with fewer shards than
the cluster's workers (`TF_CONFIG`) the pipeline is sharded by example instead (every worker reads every shard and keeps
its share of the examples, the same for every worker since the seed fixes the order), with a warning.

Statistics (`scan`): example counts, class counts, non-finite values and each modality's per-feature mean and
standard deviation (over the last axis, what `"standardize": true` uses) come from one streaming pass, cached in the
folder (`CACHE`) keyed by the shards' names, sizes and modification times, so a second run does not read the data
again. The first record of every shard is checked against the spec before anything trains (a missing field, another
type or length is named with the shard); a truncated shard is named with the record where it breaks.
A modality with a variable number of steps (shape `[null, ...]`) is held in a TFRecord record as its real steps'
values one after another (a multiple of a step's size), and in `.npz` shards as in a folder (padded, with
`<modality>_lengths`); batches are front-padded with zero steps to their longest example (at least one step), and the
real steps travel with them for the noise, as in the in-memory path.
"""

import glob
import json
import math
import os
import warnings

import numpy as np
import tensorflow as tf

from .files import DataFileError, fingerprint
from .sequence_features import LENGTHS, real_steps

SUFFIXES = (".tfrecord", ".tfrecords")
CACHE = ".multisensory-stats.json"
SHUFFLE_BUFFER = 10_000
PARALLEL_SHARDS = 4


def is_tfrecord(name):
    return name.lower().endswith(SUFFIXES)


def is_sharded(spec):
    """Whether a spec's splits are shards (see the module docstring): some split given as TFRecord files, a glob or a
    list (a split given as one file is then its one shard; one plain file per split is the in-memory layout of
    `multisensory.datasets.folder`)."""
    files = spec.get("files")
    if not isinstance(files, dict) or not files:
        return False
    entries = list(files.values())
    if any(isinstance(e, dict) for e in entries):  # {modality: .npy file}: the in-memory layout
        return False
    return any(isinstance(e, list) or isinstance(e, str) and (glob.has_magic(e) or is_tfrecord(e)) for e in entries)


def shard_paths(folder, entry, split, inside):
    """The sorted shard files of one split: a glob or a list of names, each inside the folder (`inside`)."""
    names = entry if isinstance(entry, list) else [entry]
    paths = []
    for name in names:
        inside(folder, name)
        matched = sorted(glob.glob(os.path.join(folder, name))) if glob.has_magic(name) else [
            os.path.join(folder, name)]
        if not matched or not all(os.path.isfile(p) for p in matched):
            raise DataFileError(f"'{folder}': split '{split}': no file matches '{name}' (see "
                                "multisensory.datasets.shards).")
        paths += [inside(folder, os.path.relpath(p, folder)) for p in matched]
    return paths


def _label_key(spec):
    label = spec.get("label", "label")
    if not isinstance(label, str):
        raise DataFileError("A sharded dataset's 'label' must be the name of the label feature.")
    return label


def _integer(dtype):
    return np.dtype(dtype).kind in "iub"


def variable(m):
    """Whether modality spec `m` has a variable number of steps (shape `[null, ...]`)."""
    return m["shape"][0] is None


def _width(m):
    """The values of one step of a variable-length modality, of one example of a fixed one."""
    return math.prod(m["shape"][1:] if variable(m) else m["shape"])


def feature_spec(spec):
    """{feature: tf.io feature} of a record: a fixed-length list per fixed-shape modality, a ragged one (its real steps'
    values) per variable-length modality, and the label."""
    features = {}
    for m in spec["modalities"]:
        kind = tf.int64 if _integer(m.get("dtype", "float32")) else tf.float32
        features[m["name"]] = tf.io.RaggedFeature(kind) if variable(m) else tf.io.FixedLenFeature([_width(m)], kind)
    features[_label_key(spec)] = tf.io.FixedLenFeature(
        [], tf.int64 if spec["task"]["type"] == "classification" else tf.float32)
    return features


def _decode(spec):
    """serialized records (batch,) -> ({modality: (batch, *shape), or for a variable-length one its real steps' values
    as ragged rows (batch, None)}, labels), in the spec's dtypes."""
    features, label = feature_spec(spec), _label_key(spec)
    classification = spec["task"]["type"] == "classification"

    def decode(records):
        parsed = tf.io.parse_example(records, features)
        x = {m["name"]: tf.cast(parsed[m["name"]] if variable(m) else tf.reshape(parsed[m["name"]], [-1, *m["shape"]]),
                                m.get("dtype", "float32")) for m in spec["modalities"]}
        return x, tf.cast(parsed[label], tf.int32 if classification else tf.float32)

    return decode


def front_padded(values, rest):
    """(batch, T, *rest) of ragged rows (batch, None) holding each example's steps' values one after another,
    front-padded with zero steps to the batch's longest (T >= 1), and the steps (batch,) int32."""
    width = math.prod(rest)
    values = values.with_row_splits_dtype(tf.int64)
    lengths = values.row_lengths()
    tf.debugging.assert_equal(lengths % width, tf.zeros_like(lengths),
                              message=f"a record's values are not a whole number of steps of {width}")
    steps = tf.RaggedTensor.from_row_lengths(tf.reshape(values.flat_values, [-1, *rest]), lengths // width)
    count = steps.row_lengths()
    longest = tf.maximum(tf.reduce_max(tf.concat([count, [0]], 0)), 1)
    rows = steps.value_rowids()
    position = tf.range(tf.shape(rows, tf.int64)[0]) - tf.gather(steps.row_starts(), rows)
    time = longest - tf.gather(count, rows) + position
    padded = tf.scatter_nd(tf.stack([rows, time], -1), steps.flat_values,
                           tf.concat([[tf.shape(count, tf.int64)[0], longest], tf.constant(rest, tf.int64)], 0))
    padded.set_shape([None, None, *rest])
    return padded, tf.cast(count, tf.int32)


def _finish(spec, lengths=False):
    """(features, labels) with variable-length modalities as ragged rows -> front-padded (`front_padded`), and with
    `lengths` and some variable-length modality `(features, labels, {modality: real steps})`."""
    names = [(m["name"], tuple(m["shape"][1:])) for m in spec["modalities"] if variable(m)]

    def finish(x, y):
        x, steps = dict(x), {}
        for name, rest in names:
            x[name], steps[name] = front_padded(x[name], rest)
        return (x, y, steps) if lengths and names else (x, y)

    return finish


def check_schema(paths, spec):
    """Checks the first record of every shard against the spec; the error names the shard and the field."""
    label = _label_key(spec)
    expected = {m["name"]: ("int64_list" if _integer(m.get("dtype", "float32")) else "float_list", _width(m),
                            variable(m)) for m in spec["modalities"]}
    expected[label] = ("int64_list" if spec["task"]["type"] == "classification" else "float_list", 1, False)
    for path in paths:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except tf.errors.OpError as error:
            raise DataFileError(f"'{path}' cannot be read as TFRecords: {error.message.splitlines()[0]}") from None
        if first is None:
            continue  # an empty shard
        try:
            example = tf.train.Example.FromString(first.numpy())
        except Exception as error:  # protobuf's DecodeError
            raise DataFileError(f"'{path}': record 1 is not a tf.train.Example ({type(error).__name__}).") from None
        fields = example.features.feature
        for name, (kind, length, steps) in expected.items():
            if name not in fields:
                raise DataFileError(f"'{path}': record 1 has no field '{name}'; it holds {sorted(fields)}.")
            found = fields[name].WhichOneof("kind")
            size = len(getattr(fields[name], found).value) if found else 0
            if steps and (found not in (kind, None) or size % length):
                raise DataFileError(f"'{path}': field '{name}' of record 1 is {found} of {size} value(s); the spec "
                                    f"says {kind} of steps of {length} values each.")
            if not steps and (found != kind or size != length):
                raise DataFileError(f"'{path}': field '{name}' of record 1 is {found} of {size} value(s); the spec "
                                    f"says {kind} of {length}.")


def _batches(path, spec, read, batch_size):
    """(features, labels, {modality: real steps}) NumPy batches of one shard, variable-length modalities front-padded:
    parsed TFRecords, or the shard read whole by `read(path)` (the folder's reader and checks: `(features, labels,
    non-finite count)`, each variable-length modality's `<modality>_lengths` where the file gives them)."""
    if is_tfrecord(path):
        decode, finish = _decode(spec), _finish(spec, lengths=True)
        for records in tf.data.TFRecordDataset(path).batch(batch_size):
            x, y, *steps = finish(*decode(records))
            yield ({k: v.numpy() for k, v in x.items()}, y.numpy(),
                   {k: v.numpy() for k, v in (steps[0] if steps else {}).items()})
        return
    features, labels, _ = read(path)
    steps = {}
    for m in spec["modalities"]:
        if variable(m):
            given = features.pop(f"{m['name']}{LENGTHS}", None)
            steps[m["name"]] = real_steps(features[m["name"]], given).sum(axis=1)
    for start in range(0, len(labels), batch_size):
        part = slice(start, start + batch_size)
        yield ({k: v[part] for k, v in features.items()}, labels[part], {k: v[part] for k, v in steps.items()})


def scan(folder, split, paths, spec, read=None, batch_size=4096):
    """{"examples", "classes", "nonfinite", "statistics": {modality: {"mean", "std"}}} of a split's shards, from one
    streaming pass (cached in `CACHE`; see the module docstring). A truncated shard is named with its record.
    `read(path)` reads a shard that is not TFRecord (`_batches`)."""
    cache_path = os.path.join(folder, CACHE)
    state = [[os.path.relpath(p, folder), size, mtime] for p, size, mtime in fingerprint(*paths)]
    key = json.dumps({"split": split, "shards": state, "modalities": spec["modalities"],
                      "task": spec["task"], "label": _label_key(spec)}, sort_keys=True)
    try:
        with open(cache_path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    classes = spec["task"].get("num_classes") or 0
    sums, squares, counts, nonfinite, label_counts, examples = {}, {}, {}, 0, np.zeros(classes, "int64"), 0
    for path in paths:
        done = 0
        try:
            for x, y, lengths in _batches(path, spec, read, batch_size):
                done += int(y.shape[0])
                finite = np.ones(int(y.shape[0]), bool)
                for name, values in x.items():
                    v = np.asarray(values).astype("float64")
                    rows = np.isfinite(v.reshape(len(v), -1)).all(axis=1)
                    finite &= rows
                    if name in lengths:  # the real steps of the finite rows
                        v = v[real_steps(v, lengths[name]) & rows[:, None]]
                    else:
                        v = v[rows]
                    steps = np.nan_to_num(v).reshape(-1, v.shape[-1] if v.ndim > 1 else 1)
                    sums[name] = sums.get(name, 0) + steps.sum(0)
                    squares[name] = squares.get(name, 0) + (steps ** 2).sum(0)
                    counts[name] = counts.get(name, 0) + len(steps)
                nonfinite += int((~finite).sum())
                if classes:
                    labels = np.asarray(y).astype("int64")
                    if labels.min() < 0 or labels.max() >= classes:
                        raise DataFileError(f"'{path}': a label outside the classes 0..{classes - 1} near record "
                                            f"{done}.")
                    label_counts += np.bincount(labels, minlength=classes)
        except tf.errors.DataLossError as error:
            raise DataFileError(f"'{path}' is truncated or corrupt after record {done}: "
                                f"{error.message.splitlines()[0]}") from None
        examples += done
    statistics = {}
    for name in sums:
        mean = sums[name] / max(counts[name], 1)
        std = np.sqrt(np.maximum(squares[name] / max(counts[name], 1) - mean ** 2, 0.0))
        statistics[name] = {"mean": mean.tolist(), "std": std.tolist()}
    result = {"examples": examples, "classes": label_counts.tolist(), "nonfinite": nonfinite,
              "statistics": statistics}
    cache[key] = result
    temporary = f"{cache_path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as f:
            json.dump(cache, f)
        os.replace(temporary, cache_path)
    except OSError:  # a read-only folder: no cache, the pass is made again next time
        pass
    return result


def _python_shards(paths, spec, read):
    """A dataset of each shard's examples read by `read` in a Python generator (non-TFRecord shards): in chunks, or
    where a modality has a variable number of steps one example at a time, each such modality as its real steps'
    values (the form `_decode` gives a record)."""
    label = tf.TensorSpec((), tf.int32 if spec["task"]["type"] == "classification" else tf.float32)
    signature = ({m["name"]: tf.TensorSpec((None,) if variable(m) else tuple(m["shape"]),
                                           tf.dtypes.as_dtype(m.get("dtype", "float32"))) for m in spec["modalities"]},
                 label)
    ragged = [m["name"] for m in spec["modalities"] if variable(m)]

    def examples(path):
        for x, y, steps in _batches(path.decode() if isinstance(path, bytes) else path, spec, read, 1024):
            y = y.astype(label.dtype.as_numpy_dtype)
            if not ragged:
                yield x, y
                continue
            for i in range(len(y)):
                yield ({k: v[i, v.shape[1] - steps[k][i]:].reshape(-1) if k in steps else v[i]
                        for k, v in x.items()}, y[i])

    def chunked(spec_):
        return tf.TensorSpec((None, *spec_.shape), spec_.dtype)

    if ragged:
        return lambda path: tf.data.Dataset.from_generator(examples, args=(path,), output_signature=signature)
    chunks = tf.nest.map_structure(chunked, signature)
    return lambda path: tf.data.Dataset.from_generator(examples, args=(path,), output_signature=chunks).unbatch()


def cluster_workers():
    """The number of workers in the multi-worker cluster `TF_CONFIG` describes (its chief included), 1 without one."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except (ValueError, AttributeError):
        return 1
    return max(1, sum(len(cluster.get(kind, ())) for kind in ("chief", "worker")))


def _by_example(dataset, paths, split):
    """`dataset` sharded by example under a multi-worker strategy when there are fewer shards than workers (see the
    module docstring)."""
    workers = cluster_workers()
    if len(paths) >= workers:
        return dataset
    warnings.warn(f"Split '{split}' has {len(paths)} shard(s) for {workers} workers: each worker reads every shard and "
                  "keeps its share of the examples. Write at least one shard per worker (multisensory dataset convert "
                  "--shards N) so that each reads only its own.", stacklevel=3)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _zeroed(values):
    """`values` (a tensor, or ragged rows) with non-finite values set to 0 (the "zero" non-finite policy)."""
    if not values.dtype.is_floating:
        return values

    def zero(t):
        return tf.where(tf.math.is_finite(t), t, tf.zeros_like(t))

    return tf.ragged.map_flat_values(zero, values) if isinstance(values, tf.RaggedTensor) else zero(values)


def stream_source(folder, spec, split, paths, size, read=None):
    """A streaming `Source` of one split (see the module docstring); `read` reads a shard that is not TFRecord."""
    from .registry import Source

    tfrecords = all(is_tfrecord(p) for p in paths)
    if tfrecords:
        check_schema(paths, spec)
    decode = _decode(spec) if tfrecords else None
    reader = tf.data.TFRecordDataset if tfrecords else _python_shards(paths, spec, read)
    buffer = int(spec.get("shuffle_buffer", SHUFFLE_BUFFER))
    policy = spec.get("nonfinite", "error")
    ragged = any(variable(m) for m in spec["modalities"])

    def stream(batch_size, shuffle, seed, drop_remainder, lengths=False):
        dataset = batches(batch_size, shuffle, seed, drop_remainder)
        if ragged:  # fixed-shape batches are finished as decoded
            dataset = dataset.map(_finish(spec, lengths), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _by_example(dataset, paths, split)

    def batched(examples, batch_size, drop_remainder):
        """Decoded examples in batches: a variable-length modality's as ragged rows."""
        if ragged:
            return examples.ragged_batch(batch_size, drop_remainder=drop_remainder)
        return examples.batch(batch_size, drop_remainder=drop_remainder)

    def batches(batch_size, shuffle, seed, drop_remainder):
        """Decoded batches (`_decode`'s form), before `_finish`."""
        files = tf.data.Dataset.from_tensor_slices(paths)
        if shuffle:
            files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
            records = files.interleave(reader, cycle_length=min(len(paths), PARALLEL_SHARDS),
                                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            records = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        else:
            records = files.flat_map(reader)  # the shards' order, each shard's records in turn
        if not tfrecords:  # examples read and checked by the folder's reader (its non-finite policy applied)
            return batched(records, batch_size, drop_remainder)
        if policy == "drop":  # examples with a non-finite value are left out before batching
            records = records.batch(1024).map(decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch().filter(
                lambda x, y: tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32)))
                                            for v in x.values()]))
            return batched(records, batch_size, drop_remainder)
        batches = records.batch(batch_size, drop_remainder=drop_remainder).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if policy == "zero":
            batches = batches.map(lambda x, y: ({k: _zeroed(v) for k, v in x.items()}, y))
        return batches

    return Source(int(size), None, stream=stream, portable=tfrecords)


def _source_batches(source, batch_size):
    """(features, labels, {modality: real steps where the source knows them}) NumPy batches of a `Source`, in
    order: what `registry.load` gives without noise, and the lengths it keeps for the noise."""
    if source.stream is not None:
        for x, y, *steps in source.stream(batch_size, False, 0, False, lengths=True):
            yield ({k: v.numpy() for k, v in x.items()}, y.numpy(),
                   {k: v.numpy() for k, v in (steps[0] if steps else {}).items()})
        return
    for start in range(0, source.size, batch_size):
        indices = tf.range(start, min(start + batch_size, source.size), dtype=tf.int64)
        x, y = source.fetch(indices)
        steps = source.lengths(indices) if source.lengths is not None else {}
        yield {k: v.numpy() for k, v in x.items()}, y.numpy(), {k: v.numpy() for k, v in steps.items()}


def write(source, out, shards=4, data_dir=None, batch_size=512, **options):
    """Writes dataset `source` (a name or folder) as sharded TFRecords under `out` with its spec (see the module
    docstring); returns the spec. Each split's examples go to `shards` files of consecutive examples, in order."""
    from . import registry

    info = registry.info(source, data_dir=data_dir, **options)
    if int(shards) < 1:
        raise ValueError(f"shards must be at least 1, got {shards}.")
    os.makedirs(out, exist_ok=True)
    if os.path.exists(os.path.join(out, "dataset.json")):
        raise FileExistsError(f"'{out}' holds a dataset already (dataset.json); choose another folder.")
    integer = {m.name: _integer(m.dtype) for m in info.modalities}
    steps_of = [m.name for m in info.modalities if m.shape and m.shape[0] is None]
    classification = info.task.type == "classification"
    counts = {}
    for split in registry.SPLITS:
        split_source = registry.split_source(source, split, data_dir=data_dir, **options)
        per_shard = max(1, math.ceil(split_source.size / int(shards)))
        names = [f"{split}-{k:05d}-of-{int(shards):05d}.tfrecord" for k in range(int(shards))]
        written, writer, current = 0, None, -1
        try:
            for x, y, steps in _source_batches(split_source, batch_size):
                for name in steps_of:  # a variable-length modality's real steps: the source's lengths, or the rule
                    if name not in steps:
                        steps[name] = real_steps(x[name]).sum(axis=1)
                for i in range(len(y)):
                    shard = min(written // per_shard, int(shards) - 1)
                    if shard != current:
                        if writer is not None:
                            writer.close()
                        writer, current = tf.io.TFRecordWriter(os.path.join(out, names[shard])), shard
                    values = {k: (v[i, v.shape[1] - steps[k][i]:] if k in steps else v[i]).reshape(-1)
                              for k, v in x.items()}
                    feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) if integer[k]
                               else tf.train.Feature(float_list=tf.train.FloatList(value=v))
                               for k, v in values.items()}
                    feature["label"] = (tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y[i])]))
                                        if classification else
                                        tf.train.Feature(float_list=tf.train.FloatList(value=[float(y[i])])))
                    writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                    written += 1
        finally:
            if writer is not None:
                writer.close()
        for name in names[current + 1:]:  # fewer examples than shards: the rest are empty
            tf.io.TFRecordWriter(os.path.join(out, name)).close()
        counts[split] = written
    task = {"type": info.task.type, **({"metrics": list(info.task.metrics)} if info.task.metrics else {})}
    if classification:
        task["num_classes"] = info.task.num_classes
    elif info.task.value_range:
        task["range"] = list(info.task.value_range)
    spec = {"name": info.name, "description": f"{info.name} as TFRecord shards (multisensory dataset convert)",
            "modalities": [{"name": m.name, "kind": m.kind, "shape": list(m.shape), "dtype": m.dtype,
                            # standardised inside the model: kept where the source had it, and for every vector
                            "standardize": m.standardize is not None or m.kind == "vector"}
                           for m in info.modalities],
            "task": task, "label": "label", "files": {s: f"{s}-*.tfrecord" for s in registry.SPLITS},
            "examples": counts, "shuffle_buffer": SHUFFLE_BUFFER}
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(spec, f, indent=2)
    return spec
