"""Your own data: a folder with a `dataset.json` spec, loaded like any registered dataset, no code needed.

Wherever a dataset name is accepted (`datasets.load`, `datasets.info`, `--dataset` of every command), a path to
such a folder (or to its spec file) is too; noise, dropout, corruptions, robustness reports and exports apply as to
the registered datasets. A spec:

    {
      "name": "sensors",
      "modalities": [
        {"name": "imu", "kind": "vector", "shape": [6], "columns": {"prefix": "imu_"}},
        {"name": "audio", "kind": "sequence", "shape": [4, 2], "columns": {"range": [7, 15]}}
      ],
      "task": {"type": "classification", "num_classes": 3},
      "label": "label",
      "files": {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"},
      "nonfinite": "error"
    }

- `modalities`: each with `name`, `kind` (one of `MODALITY_KINDS`), `shape` of one example (its product is the
  number of columns, read in order and reshaped row-major), `dtype` (default float32), `description`, and for
  tables `columns`: a list of column names (or 0-based indices), `{"prefix": "imu_"}` (every column whose name
  starts with it, in file order) or `{"range": [start, stop]}` (0-based, stop excluded).
- `task`: `{"type": "classification", "num_classes": K}` (labels are the integers 0..K-1) or
  `{"type": "regression", "range": [low, high]}` (labels are floats in that range); optional `metrics`.
- `label`: the label column (name or index) or array key; default "label".
- `files`: a file per split, or one file for all and `"split": {"train": 0.8, "validation": 0.1, "test": 0.1,
  "seed": 0}` (a seeded permutation, fractions summing to 1). A file is a table (`.csv`, `.tsv`, `.txt` with
  `"delimiter"`; `"header": true` by default: with `"header": false` columns are given by index) or a `.parquet` table
  (columns by name), an `.npz` with one
  array per modality (named after it, shape (n, *shape)) and the label array, or, instead of a file name, a dict
  {modality or "label": `.npy` file}.
- A sequence (or text) modality of a variable number of steps has shape `[null, features...]` and comes as arrays:
  padded (n, T, features...) with zero steps in front (the zoo's padding), or every example's steps one after
  another (total steps, features...) with `<modality>_lengths` (n,), which the loader front-pads to the longest.
  The lengths say which steps are real (noise and statistics use them); padded arrays without lengths count the
  steps from the first one holding a non-zero value as real (`multisensory.datasets.noise`).
- `"standardize": true` on a modality: the model standardises it with the training split's mean and standard
  deviation over the last axis (`Modality.standardize`, applied inside the model, so a saved or exported model
  takes the features as the files hold them). Noise is added to the features as the files hold them.
- Larger than memory: each split as shards (`"files": {"train": "train-*.tfrecord", ...}`, a glob or a list; TFRecord,
  or files of the formats above), streamed with bounded memory (`multisensory.datasets.shards`; `multisensory dataset convert` writes any
  dataset so).
- `nonfinite`: what a NaN or infinite feature gets: `"error"` (default: refused with file, row and column), `"zero"`
  (replaced by 0) or `"drop"` (the example is left out); `check` reports how many there are either way.

Files are read through `multisensory.datasets.files` (regular files only, errors naming the file, the row counted
from 1 and the column, a cache that notices changes). Unknown keys in the spec are errors listing the accepted ones.
"""

import csv
import json
import os

import numpy as np

from . import shards
from .dataset_info import MODALITY_KINDS, DatasetInfo, Modality, Task
from .files import DataFileError, cache_watching, check_labels, reading, regular_file
from .registry import SPLITS, array_source
from .sequence_features import LENGTHS, real_steps

SPEC = "dataset.json"
KEYS = {"name", "description", "modalities", "task", "label", "files", "split", "delimiter", "header", "nonfinite",
        "examples", "shuffle_buffer"}
MODALITY_KEYS = {"name", "kind", "shape", "dtype", "description", "columns", "standardize"}
TASK_KEYS = {"type", "num_classes", "range", "metrics"}
NONFINITE = ("error", "zero", "drop")
TABLES = {".csv": ",", ".tsv": "\t", ".txt": None}


def is_folder_dataset(name):
    """True when `name` is a path to a dataset folder or to its spec file (not a registered name)."""
    name = os.fspath(name)
    return os.path.isfile(os.path.join(name, SPEC)) or (name.endswith(".json") and os.path.isfile(name))


def _spec_path(path):
    path = os.path.abspath(os.fspath(path))
    return path if path.endswith(".json") else os.path.join(path, SPEC)


def _unknown(found, accepted, where):
    unknown = sorted(set(found) - accepted)
    if unknown:
        raise DataFileError(f"{where}: unknown key(s) {unknown}; accepted keys: {sorted(accepted)}.")


def read_spec(path):
    """The spec of the dataset at `path`, checked (see the module docstring)."""
    spec_path = _spec_path(path)
    with reading(regular_file(spec_path)), open(spec_path) as f:
        spec = json.load(f)
    if not isinstance(spec, dict):
        raise DataFileError(f"'{spec_path}': the spec must be a JSON object.")
    _unknown(spec, KEYS, f"'{spec_path}'")
    for key in ("modalities", "task", "files"):
        if key not in spec:
            raise DataFileError(f"'{spec_path}': '{key}' is missing (see multisensory.datasets.folder).")
    if not isinstance(spec["modalities"], list) or not spec["modalities"]:
        raise DataFileError(f"'{spec_path}': 'modalities' must be a non-empty list of objects.")
    _check_types(spec, spec_path)
    for m in spec["modalities"]:
        _unknown(m, MODALITY_KEYS, f"'{spec_path}', modality {m.get('name')!r}")
        if m.get("kind", "vector") not in MODALITY_KINDS:
            raise DataFileError(f"'{spec_path}', modality {m.get('name')!r}: unknown kind {m.get('kind')!r}; kinds "
                                f"are {list(MODALITY_KINDS)}.")
        if "name" not in m or "shape" not in m:
            raise DataFileError(f"'{spec_path}': every modality needs a 'name' and a 'shape', got {m}.")
        if None in m["shape"] and (m["shape"].index(None) != 0 or m["shape"].count(None) > 1
                                   or m.get("kind") not in ("sequence", "text")):
            raise DataFileError(f"'{spec_path}', modality {m['name']!r}: only a sequence's (or text's) first "
                                f"dimension may be null (a variable number of steps), got shape {m['shape']}.")
    _unknown(spec["task"], TASK_KEYS, f"'{spec_path}', task")
    if spec.get("nonfinite", "error") not in NONFINITE:
        raise DataFileError(f"'{spec_path}': nonfinite must be one of {list(NONFINITE)}, got {spec['nonfinite']!r}.")
    files = spec["files"]
    if isinstance(files, dict) and set(files) != set(SPLITS):
        raise DataFileError(f"'{spec_path}': 'files' must name {list(SPLITS)} (or be one file with 'split'), got "
                            f"{sorted(files)}.")
    if not isinstance(files, dict):
        fractions = spec.get("split")
        if not isinstance(fractions, dict) or set(fractions) - {"seed"} != set(SPLITS) or abs(
                sum(fractions[s] for s in SPLITS) - 1) > 1e-6:
            raise DataFileError(f"'{spec_path}': one file for all splits needs \"split\": {{\"train\": 0.8, "
                                f"\"validation\": 0.1, \"test\": 0.1, \"seed\": 0}} with fractions summing to 1.")
    return spec


MAX_CLASSES = 100_000


def _check_types(spec, spec_path):
    """Each spec value of the type it must have: the error names the key and the type expected."""
    def expect(ok, where, what, value):
        if not ok:
            raise DataFileError(f"'{spec_path}': {where} must be {what}, got {value!r}.")

    def integer(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    expect(isinstance(spec.get("name", ""), str), "'name'", "a string", spec.get("name"))
    for m in spec["modalities"]:
        expect(isinstance(m, dict), "each of 'modalities'", "an object with name, kind and shape", m)
        where = f"modality {m.get('name')!r}"
        expect(isinstance(m.get("name", ""), str) and m.get("name", "x"), f"{where}: 'name'", "a non-empty string",
               m.get("name"))
        shape = m.get("shape", [1])
        expect(isinstance(shape, list) and shape and all(d is None or integer(d) and d > 0 for d in shape),
               f"{where}: 'shape'", "a list of positive integers (e.g. [6])", shape)
        try:
            dtype = np.dtype(m.get("dtype", "float32"))
        except TypeError:
            dtype = None
        expect(isinstance(m.get("dtype", ""), str) and dtype is not None and dtype.kind in "fiub", f"{where}: 'dtype'",
               "a numeric NumPy dtype name (float32, int32, uint8, ...)", m.get("dtype"))
        expect(isinstance(m.get("standardize", False), bool), f"{where}: 'standardize'", "true or false",
               m.get("standardize"))
    task = spec["task"]
    expect(isinstance(task, dict), "'task'", "an object", task)
    expect(task.get("type") in ("classification", "regression"), "task 'type'", "\"classification\" or "
           "\"regression\"", task.get("type"))
    if task["type"] == "classification":
        classes = task.get("num_classes")
        expect(integer(classes) and 2 <= classes <= MAX_CLASSES, "task 'num_classes'",
               f"an integer from 2 to {MAX_CLASSES:,}", classes)
    elif "range" in task:
        expect(isinstance(task["range"], list) and len(task["range"]) == 2 and all(map(number, task["range"])),
               "task 'range'", "[low, high] numbers", task["range"])
    if not isinstance(spec["files"], dict):
        expect(isinstance(spec["files"], str), "'files'", "a file name or an object {split: file}", spec["files"])
        for key, value in (spec.get("split") or {}).items():
            expect(integer(value) if key == "seed" else number(value) and 0 <= value <= 1, f"split '{key}'",
                   "an integer" if key == "seed" else "a fraction from 0 to 1", value)


def _shard_paths(path, spec):
    """{split: shard files} of a sharded dataset folder (`multisensory.datasets.shards`)."""
    folder = os.path.dirname(_spec_path(path))
    return {split: shards.shard_paths(folder, spec["files"][split], split, _inside) for split in SPLITS}


def _shard_reader(path, spec):
    """Reads one shard that is not TFRecord as a whole file of the folder, with every check: (features, labels,
    non-finite count)."""
    folder = os.path.dirname(_spec_path(path))
    return lambda shard: _checked(*_read_file(folder, os.path.relpath(shard, folder), spec), spec)


def _shard_scan(path, spec, split, paths):
    return shards.scan(os.path.dirname(_spec_path(path)), split, paths[split], spec,
                       _shard_reader(path, spec))


def _shard_sizes(path, spec, paths):
    given = spec.get("examples")
    tfrecords = all(shards.is_tfrecord(p) for split in SPLITS for p in paths[split])
    if tfrecords and isinstance(given, dict) and set(given) == set(SPLITS):
        return {split: int(given[split]) for split in SPLITS}
    return {split: _shard_scan(path, spec, split, paths)["examples"] for split in SPLITS}


def info(path):
    """The `DatasetInfo` of a dataset folder, with its split sizes."""
    spec = read_spec(path)
    task = spec["task"]
    if shards.is_sharded(spec):
        paths = _shard_paths(path, spec)
        sizes = _shard_sizes(path, spec, paths)
        statistics = _shard_scan(path, spec, "train", paths)["statistics"] if any(
            m.get("standardize") for m in spec["modalities"]) else {}

        def standardize(m):
            return statistics[m["name"]]
    else:
        splits = read_splits(os.path.dirname(_spec_path(path)))
        train = splits["train"][0]
        sizes = {split: len(labels) for split, (_, labels, _) in splits.items()}

        def standardize(m):
            return _statistics(train[m["name"]], m, train.get(f"{m['name']}{LENGTHS}"))
    return DatasetInfo(
        name=spec.get("name", os.path.basename(os.path.dirname(_spec_path(path)))),
        modalities=tuple(Modality(m["name"], tuple(m["shape"]), m.get("dtype", "float32"), m.get("kind", "vector"),
                                  m.get("description", ""), standardize(m) if m.get("standardize") else None)
                         for m in spec["modalities"]),
        task=Task(task["type"], num_classes=task.get("num_classes"), value_range=task.get("range"),
                  metrics=task.get("metrics", ())),
        splits=sizes, source=spec.get("description", _spec_path(path)))


def _statistics(x, modality, lengths=None):
    """{"mean", "std"} over the last axis of the training features; of a sequence, over its real steps (the last
    `lengths` of each row, else those from the first non-zero step: `sequence_features.real_steps`)."""
    if modality.get("kind") in ("sequence", "text") and x.ndim > 2:
        x = x[real_steps(x, lengths)]
    steps = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)
    return {"mean": steps.mean(0).tolist(), "std": steps.std(0).tolist()}


def _table(path, spec):
    """(column names, rows as lists of str) of a delimited text file; a ragged row is an error naming it."""
    delimiter = spec.get("delimiter", TABLES.get(os.path.splitext(path)[1].lower(), ","))
    # utf-8-sig: a byte-order mark, as spreadsheet programs write it, is not part of the first column's name
    with reading(regular_file(path)), open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=delimiter) if delimiter else (line.split() for line in f))
    rows = [r for r in rows if r]
    header = [c.strip() for c in rows.pop(0)] if spec.get("header", True) and rows else None
    width = len(header) if header else (len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        if len(row) != width:
            first = "header" if header else "first row"
            raise DataFileError(f"'{path}': row {i + 1} has {len(row)} columns, the {first} {width}.")
    return header or [str(i) for i in range(width)], rows


def _column_indices(selector, names, path, what):
    def index(c):
        if isinstance(c, int) or (isinstance(c, str) and c.isdigit() and c not in names):
            if not 0 <= int(c) < len(names):
                raise DataFileError(f"'{path}': {what}: column {c} is outside the file's {len(names)} columns.")
            return int(c)
        if c not in names:
            raise DataFileError(f"'{path}': {what}: no column {c!r}; the columns are {names}.")
        return names.index(c)

    if isinstance(selector, dict) and set(selector) == {"prefix"}:
        found = [i for i, n in enumerate(names) if n.startswith(selector["prefix"])]
        if not found:
            raise DataFileError(f"'{path}': {what}: no column starts with {selector['prefix']!r}.")
        return found
    if isinstance(selector, dict) and set(selector) == {"range"}:
        start, stop = selector["range"]
        return [index(i) for i in range(start, stop)]
    if isinstance(selector, (list, tuple)):
        return [index(c) for c in selector]
    return [index(selector)]


def _parquet(path):
    """(column names, {index: float64 array}) of a Parquet file; a column that is not numeric is named."""
    import pyarrow.parquet

    with reading(regular_file(path)):
        table = pyarrow.parquet.read_table(path)
    names = [str(n) for n in table.column_names]

    def numbers(columns):
        out = []
        for c in columns:
            column = table.column(c)
            try:
                out.append(column.to_numpy(zero_copy_only=False).astype("float64"))
            except (ValueError, TypeError):
                raise DataFileError(f"'{path}': column {names[c]} holds {column.type}, not numbers.") from None
        return np.stack(out, axis=1) if out else np.zeros((table.num_rows, 0))

    return names, numbers


def _numbers(rows, columns, names, path):
    try:
        return np.array([[float(row[c]) for c in columns] for row in rows], dtype="float64").reshape(
            len(rows), len(columns))
    except ValueError:
        for i, row in enumerate(rows):
            for c in columns:
                try:
                    float(row[c])
                except ValueError:
                    cell = row[c] if len(row[c]) <= 24 else row[c][:24] + "..."
                    raise DataFileError(f"'{path}': row {i + 1}, column {names[c]}: {cell!r} is not a number.") \
                        from None
        raise


def _inside(folder, name):
    """The path of dataset file `name`, which must lie inside the dataset folder (links resolved): a spec names its
    own files, never a system file or one beside the folder."""
    if not isinstance(name, str) or not name:
        raise DataFileError(f"'{_spec_path(folder)}': a file in 'files' must be a name (a path inside the dataset "
                            f"folder), got {name!r}.")
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root:
        raise DataFileError(f"'{_spec_path(folder)}': file '{name}' lies outside the dataset folder '{root}'; a "
                            "spec's files must be inside its folder (copy or link the folder instead).")
    return os.path.join(folder, name)


def _read_file(folder, entry, spec):
    """({modality: float64 array (n, *shape)}, labels (n,), source name) of one file (or dict of .npy files)."""
    label_key = spec.get("label", "label")
    if isinstance(entry, dict):
        arrays = {}
        for key, name in entry.items():
            path = _inside(folder, name)
            with reading(regular_file(path)):
                arrays[key] = np.load(path, allow_pickle=False)
        return arrays, "label", ", ".join(entry.values())
    path = _inside(folder, entry)
    if path.lower().endswith(".npz"):
        with reading(regular_file(path)), np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}, label_key, path
    if path.lower().endswith(".parquet"):
        names, numbers = _parquet(path)
    else:
        names, rows = _table(path, spec)

        def numbers(columns):
            return _numbers(rows, columns, names, path)

    for m in spec["modalities"]:
        if None in m["shape"]:
            raise DataFileError(f"'{path}': modality '{m['name']}' has a variable number of steps, which a table "
                                "cannot hold; give it as arrays (.npz or .npy, see multisensory.datasets.folder).")
    arrays = {"__label__": numbers(_column_indices(label_key, names, path, "label"))[:, 0]}
    for m in spec["modalities"]:
        if "columns" not in m:
            raise DataFileError(f"'{path}': modality '{m['name']}' needs 'columns' in the spec to be read from a "
                                "table.")
        arrays[m["name"]] = numbers(_column_indices(m["columns"], names, path, f"modality '{m['name']}'"))
    return arrays, "__label__", path


def _checked(arrays, label_key, source, spec):
    """Features and labels of one file after the spec's checks; the count of non-finite examples."""
    if label_key not in arrays:
        raise DataFileError(f"'{source}': no label array '{label_key}'; it holds {sorted(arrays)}.")
    labels = np.asarray(arrays[label_key]).reshape(-1)
    n = len(labels)
    if not n:
        raise DataFileError(f"'{source}' has no example.")
    features = {}
    for m in spec["modalities"]:
        if m["name"] not in arrays:
            raise DataFileError(f"'{source}': modality '{m['name']}' is missing; it holds {sorted(arrays)}.")
        x = np.asarray(arrays[m["name"]])
        if x.dtype.kind not in "fiub":
            raise DataFileError(f"'{source}': modality '{m['name']}' has dtype {x.dtype}; expected numbers.")
        shape = tuple(m["shape"])
        if None in shape:
            lengths = arrays.get(f"{m['name']}{LENGTHS}")
            features[m["name"]] = _steps(x, lengths, m, n, source)
            if lengths is not None:
                features[f"{m['name']}{LENGTHS}"] = np.asarray(lengths).reshape(-1).astype("int32")
            continue
        if len(x) != n:
            raise DataFileError(f"'{source}': modality '{m['name']}' has {len(x)} examples, the labels {n}.")
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise DataFileError(f"'{source}': modality '{m['name']}' has {int(np.prod(x.shape[1:]))} values per "
                                f"example, its declared shape {list(shape)} {int(np.prod(shape))}.")
        features[m["name"]] = _cast(x.reshape((n,) + shape), m, source)
    bad = np.zeros(n, bool)
    for name, x in ((k, v) for k, v in features.items() if not k.endswith(LENGTHS)):
        rows = ~np.isfinite(x.reshape(n, -1)).all(axis=1)
        if rows.any() and spec.get("nonfinite", "error") == "error":
            row = int(np.argmax(rows))
            column = int(np.argmax(~np.isfinite(x.reshape(n, -1)[row])))
            raise DataFileError(f"'{source}': modality '{name}' has non-finite values in {int(rows.sum())} example(s)"
                                f" (first: row {row + 1}, value {column}); fix them or set \"nonfinite\" to \"zero\" "
                                "or \"drop\".")
        bad |= rows
    task = spec["task"]
    if task["type"] == "classification":
        labels = check_labels(labels, task.get("num_classes") or 0, source)
    else:
        labels = labels.astype("float32")
        low, high = task.get("range") or (-np.inf, np.inf)
        outside = ~np.isfinite(labels) | (labels < low) | (labels > high)
        if outside.any():
            row = int(np.argmax(outside))
            raise DataFileError(f"'{source}': label {labels[row]} at row {row + 1} is outside the range "
                                f"[{low}, {high}] ({int(outside.sum())} such label(s)).")
    if bad.any():
        if spec["nonfinite"] == "drop":
            features, labels = {k: v[~bad] for k, v in features.items()}, labels[~bad]
        else:
            features = {k: v if k.endswith(LENGTHS) else np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
                        for k, v in features.items()}
    return features, labels, int(bad.sum())


def _steps(x, lengths, m, n, source):
    """A variable-length modality as (n, T, ...) front-padded with zero steps: given padded (n, T, ...) already, or
    as every example's steps one after another (total, ...) with `<modality>_lengths` (n,)."""
    name, rest = m["name"], tuple(m["shape"][1:])
    if lengths is not None:
        lengths = np.asarray(lengths).reshape(-1)
        if lengths.dtype.kind not in "iu" or len(lengths) != n or (lengths < 0).any() or lengths.sum() != len(x):
            raise DataFileError(f"'{source}': '{name}_lengths' must hold {n} non-negative integers summing to the "
                                f"{len(x)} steps of '{name}'.")
        padded = np.zeros((n, max(int(lengths.max()), 1)) + x.shape[1:], x.dtype)
        for i, (end, length) in enumerate(zip(np.cumsum(lengths), lengths)):
            padded[i, padded.shape[1] - length:] = x[end - length:end]
        x = padded
    if x.ndim < 2 or len(x) != n or tuple(x.shape[2:]) != rest:
        raise DataFileError(f"'{source}': modality '{name}' must be (examples, steps, {', '.join(map(str, rest))}) "
                            f"with {n} examples (or its steps with '{name}_lengths'), got shape {x.shape}.")
    return _cast(x, m, source)


def _cast(x, m, source):
    """`x` in the modality's declared dtype, refusing values that do not fit it (300 in int8, 1.5 in an integer
    dtype, 1e39 in float32): a cast would change them silently."""
    dtype = np.dtype(m.get("dtype", "float32"))
    if x.dtype == dtype or not x.size:
        return x.astype(dtype)
    where = f"'{source}': modality '{m['name']}'"
    if dtype.kind in "iub":
        limits = np.iinfo(dtype) if dtype.kind in "iu" else np.iinfo("uint8")
        low, high = (0, 1) if dtype.kind == "b" else (limits.min, limits.max)
        finite = np.isfinite(x) if x.dtype.kind == "f" else np.ones(x.shape, bool)
        bad = ~finite | (x < low) | (x > high) | ((x != np.round(x)) if x.dtype.kind == "f" else False)
        if bad.any():
            flat = int(np.argmax(bad.reshape(-1)))
            row, value = np.unravel_index(flat, x.shape)[0], x.reshape(-1)[flat]
            raise DataFileError(f"{where} has {int(bad.sum())} value(s) that {dtype} cannot hold (first: {value} in row"
                                f" {row + 1}); {dtype} holds integers from {low} to {high}: declare a wider dtype.")
    elif x.dtype.kind == "f" and np.finfo(dtype).max < np.finfo(x.dtype).max:
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(x) & (np.abs(x) > np.finfo(dtype).max)
        if bad.any():
            flat = int(np.argmax(bad.reshape(-1)))
            row, value = np.unravel_index(flat, x.shape)[0], x.reshape(-1)[flat]
            raise DataFileError(f"{where}: {value:g} in row {row + 1} overflows {dtype} (largest "
                                f"{np.finfo(dtype).max:.3g}; {int(bad.sum())} such value(s)): rescale the feature.")
    return x.astype(dtype)


@cache_watching(lambda folder: [folder])
def read_splits(folder):
    """{split: (features, labels, non-finite examples)} of a dataset folder, checked; the features hold each
    variable-length modality's `<modality>_lengths` where the files give them."""
    spec = read_spec(folder)
    files = spec["files"]
    if isinstance(files, dict):
        splits = {split: _checked(*_read_file(folder, files[split], spec), spec) for split in SPLITS}
    else:
        features, labels, bad = _checked(*_read_file(folder, files, spec), spec)
        fractions = spec["split"]
        order = np.random.default_rng(fractions.get("seed", 0)).permutation(len(labels))
        ends = np.round(np.cumsum([fractions[s] for s in SPLITS]) * len(labels)).astype(int)
        parts = np.split(order, ends[:-1])
        splits = {split: ({k: v[p] for k, v in features.items()}, labels[p], bad) for split, p in zip(SPLITS, parts)}
    for split, (_, labels, _) in splits.items():
        if not len(labels):
            raise DataFileError(f"'{folder}': split '{split}' has no example.")
    return splits


def load_split(path, split):
    """The `Source` of one split of the dataset folder at `path` (streamed from shards where the spec names them)."""
    spec = read_spec(path)
    if shards.is_sharded(spec):
        paths = _shard_paths(path, spec)
        return shards.stream_source(os.path.dirname(_spec_path(path)), spec, split, paths[split],
                                    _shard_sizes(path, spec, paths)[split], _shard_reader(path, spec))
    features, labels, _ = read_splits(os.path.dirname(_spec_path(path)))[split]
    lengths = {k[:-len(LENGTHS)]: v for k, v in features.items() if k.endswith(LENGTHS)}
    return array_source({k: v for k, v in features.items() if not k.endswith(LENGTHS)}, labels, lengths=lengths)


def check(path):
    """A summary of a dataset folder after every check (the same as at load time): split sizes, class balance or
    label range, non-finite examples and the policy applied, the scale of each modality's training features with a
    hint to standardise those far from unit scale. Raises `DataFileError` at the first problem."""
    dataset_info = info(path)
    if shards.is_sharded(read_spec(path)):
        return _check_shards(path, dataset_info)
    splits = read_splits(os.path.dirname(_spec_path(path)))
    lines = [f"dataset '{dataset_info.name}' ({_spec_path(path)})",
             "modalities: " + ", ".join(f"{m.name} {m.kind} {list(m.shape)} {m.dtype}"
                                        for m in dataset_info.modalities)]
    spec = read_spec(path)
    policy = {"error": "", "zero": " (set to 0)", "drop": " (dropped)"}[spec.get("nonfinite", "error")]
    for split, (_, labels, bad) in splits.items():
        if dataset_info.task.type == "classification":
            counts = np.bincount(labels, minlength=dataset_info.task.num_classes)
            labels_text = "classes " + " ".join(f"{k}:{c}" for k, c in enumerate(counts))
        else:
            labels_text = f"labels in [{labels.min():.4g}, {labels.max():.4g}], mean {labels.mean():.4g}"
        lines.append(f"{split:>10s}: {len(labels)} examples; {labels_text}"
                     + (f"; non-finite examples: {bad}{policy}" if isinstance(spec["files"], dict) else ""))
    if not isinstance(spec["files"], dict):
        lines.append(f"non-finite examples in {spec['files']}: {next(iter(splits.values()))[2]}{policy}")
    train = splits["train"][0]
    lines.append("scale of the training features (per feature over the last axis):")
    for m in spec["modalities"]:
        lines.append(f"  {m['name']}: " + scale_summary(_statistics(train[m["name"]], m,
                                                                    train.get(f"{m['name']}{LENGTHS}")),
                                                        bool(m.get("standardize"))))
    return "\n".join(lines)


def _check_shards(path, dataset_info):
    """`check` of a sharded folder: every shard's schema and every record read once (streamed, cached)."""
    spec = read_spec(path)
    paths = _shard_paths(path, spec)
    lines = [f"dataset '{dataset_info.name}' ({_spec_path(path)}), shards",
             "modalities: " + ", ".join(f"{m.name} {m.kind} {list(m.shape)} {m.dtype}"
                                        for m in dataset_info.modalities)]
    scans = {}
    for split in SPLITS:
        if all(shards.is_tfrecord(p) for p in paths[split]):
            shards.check_schema(paths[split], spec)
        scans[split] = scan = _shard_scan(path, spec, split, paths)
        given = (spec.get("examples") or {}).get(split)
        if given is not None and int(given) != scan["examples"]:
            raise DataFileError(f"'{_spec_path(path)}': 'examples' says {given} for split '{split}'; its shards hold "
                                f"{scan['examples']}.")
        if scan["nonfinite"] and spec.get("nonfinite", "error") == "error":
            raise DataFileError(f"Split '{split}' has {scan['nonfinite']} example(s) with non-finite values; fix "
                                "them or set \"nonfinite\" to \"zero\" or \"drop\".")
        labels = ("classes " + " ".join(f"{k}:{c}" for k, c in enumerate(scan["classes"]))
                  if scan["classes"] else "regression labels")
        lines.append(f"{split:>10s}: {scan['examples']} examples in {len(paths[split])} shard(s); {labels}; "
                     f"non-finite examples: {scan['nonfinite']}")
    lines.append("scale of the training features (per feature over the last axis):")
    for m in spec["modalities"]:
        lines.append(f"  {m['name']}: " + scale_summary(scans["train"]["statistics"][m["name"]],
                                                        bool(m.get("standardize"))))
    return "\n".join(lines)


UNIT_SCALE = 3.0  # a feature is far from unit scale when |mean| or std exceeds this, or std is below its inverse


def scale_summary(statistics, standardized):
    """One line on a modality's scale: the ranges of its features' means and standard deviations, and a hint to
    standardise where they are far from unit scale (unscaled raw features cost accuracy silently)."""
    mean, std = np.asarray(statistics["mean"]), np.asarray(statistics["std"])
    text = f"means in [{mean.min():.4g}, {mean.max():.4g}], stds in [{std.min():.4g}, {std.max():.4g}]"
    constant = int((std == 0).sum())
    if constant:
        text += f"; {constant} constant feature(s)"
    varying = std[std > 0]
    far = np.abs(mean).max() > UNIT_SCALE or (varying.size and (varying.max() > UNIT_SCALE
                                                                or varying.min() < 1 / UNIT_SCALE))
    if standardized:
        return text + "; standardised by the model (\"standardize\": true)"
    if far:
        return text + "; far from unit scale: add \"standardize\": true to this modality in the spec (the model " \
                      "then standardises it with these statistics, and its exports take the raw values)"
    return text
