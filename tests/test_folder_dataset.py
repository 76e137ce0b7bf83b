"""Dataset folders (`dataset.json` + files): every format loads, the command line takes them, bad folders are named."""

import json
import os

import numpy as np
import pytest

from multisensory import datasets, exports, zoo
from multisensory.datasets import folder, higgs
from multisensory.datasets.files import DataFileError
from multisensory.training import commands

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "sensors")


def toy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(n, 3)).round(2), "b": rng.normal(size=(n, 2, 2)).round(2),
            "label": rng.integers(0, 2, n)}


def spec(tmp_path, files, **extra):
    body = {"modalities": [{"name": "a", "shape": [3], "columns": {"prefix": "a"}},
                           {"name": "b", "kind": "sequence", "shape": [2, 2], "columns": {"range": [4, 8]}}],
            "task": {"type": "classification", "num_classes": 2}, "files": files, **extra}
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    return str(tmp_path)


def write_table(path, data, delimiter=",", header=True):
    rows = np.column_stack([data["label"], data["a"], data["b"].reshape(len(data["label"]), -1)])
    names = ["label", "a0", "a1", "a2", "b0", "b1", "b2", "b3"]
    with open(path, "w") as f:
        if header:
            f.write(delimiter.join(names) + "\n")
        f.writelines(delimiter.join(f"{v:g}" for v in row) + "\n" for row in rows)


def collect(path, split):
    xs, ys = [], []
    for x, y in datasets.load(path, split, batch_size=100, shuffle=False):
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


@pytest.mark.parametrize("layout", ["csv", "tsv-headerless", "parquet", "npz", "npy"])
def test_each_file_format_loads_the_same_examples(tmp_path, layout):
    data = {split: toy(seed=i) for i, split in enumerate(("train", "validation", "test"))}
    files = {}
    for split, d in data.items():
        if layout == "csv":
            write_table(tmp_path / f"{split}.csv", d)
            files[split] = f"{split}.csv"
        elif layout == "tsv-headerless":
            write_table(tmp_path / f"{split}.tsv", d, "\t", header=False)
            files[split] = f"{split}.tsv"
        elif layout == "parquet":
            import pyarrow
            import pyarrow.parquet

            columns = {"label": d["label"], **{f"a{i}": d["a"][:, i] for i in range(3)},
                       **{f"b{i}": d["b"].reshape(30, 4)[:, i] for i in range(4)}}
            pyarrow.parquet.write_table(pyarrow.table(columns), tmp_path / f"{split}.parquet")
            files[split] = f"{split}.parquet"
        elif layout == "npz":
            np.savez(tmp_path / f"{split}.npz", **d)
            files[split] = f"{split}.npz"
        else:
            for key, array in d.items():
                np.save(tmp_path / f"{split}_{key}.npy", array)
            files[split] = {key: f"{split}_{key}.npy" for key in d}
    extra = {"header": False, "label": 0} if layout == "tsv-headerless" else {}
    path = spec(tmp_path, files, **extra)
    if layout == "tsv-headerless":  # by index: a is columns 1-3
        body = json.loads((tmp_path / "dataset.json").read_text())
        body["modalities"][0]["columns"] = [1, 2, 3]
        (tmp_path / "dataset.json").write_text(json.dumps(body))
    info = datasets.info(path)
    assert info.splits == {"train": 30, "validation": 30, "test": 30}
    assert [(m.name, m.shape, m.kind) for m in info.modalities] == [("a", (3,), "vector"), ("b", (2, 2), "sequence")]
    x, y = collect(path, "validation")
    np.testing.assert_allclose(x["a"], data["validation"]["a"], rtol=1e-6)
    np.testing.assert_allclose(x["b"], data["validation"]["b"], rtol=1e-6)
    np.testing.assert_array_equal(y, data["validation"]["label"])


def test_one_file_split_by_seeded_fractions(tmp_path):
    data = toy(40)
    write_table(tmp_path / "all.csv", data)
    path = spec(tmp_path, "all.csv", split={"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3})
    sizes = {split: len(collect(path, split)[1]) for split in ("train", "validation", "test")}
    assert sizes == {"train": 20, "validation": 10, "test": 10}
    together = np.concatenate([collect(path, s)[0]["a"] for s in ("train", "validation", "test")])
    np.testing.assert_allclose(np.sort(together, axis=0), np.sort(data["a"], axis=0), rtol=1e-6)


def test_the_example_folder_checks_trains_evaluates_under_noise_and_exports(tmp_path, capsys):
    assert commands.main(["dataset", "check", EXAMPLE]) == 0
    report = capsys.readouterr().out
    assert "train: 105 examples" in report and "ok: every check passed" in report
    out = str(tmp_path / "run")
    assert commands.main(["train", "--model", "additive_fusion", "--dataset", EXAMPLE, "--epochs", "2",
                     "--batch-size", "16", "--config", "width=8", "--out", out]) == 0
    assert os.path.isdir(os.path.join(out, "export", "additive_fusion", "1"))
    assert commands.main(["evaluate", "--model-path", os.path.join(out, "model.keras"), "--dataset", EXAMPLE,
                     "--noise", "imu=0.5,audio=0.5"]) == 0
    assert "accuracy" in capsys.readouterr().out
    root = str(tmp_path / "presets")  # a folder dataset publishes like a registered one
    assert commands.main(["publish", "--run", out, "--name", "sensors", "--root", root, "--snrs", "inf,1"]) == 0
    manifest = exports.read_manifest("sensors", root)
    assert manifest["dataset"]["name"] == "sensors" and manifest["robustness"]["dropped"]["none"]["accuracy"] > 0


def bad_folder(tmp_path, edit_table=None, **spec_changes):
    data = toy()
    for split in ("train", "validation", "test"):
        write_table(tmp_path / f"{split}.csv", data)
    if edit_table:
        path = tmp_path / "test.csv"
        path.write_text(edit_table(path.read_text()))
    path = spec(tmp_path, {s: f"{s}.csv" for s in ("train", "validation", "test")})
    body = json.loads((tmp_path / "dataset.json").read_text())
    for key, value in spec_changes.items():
        body[key] = value
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    return path


def _line(text, k, new):
    lines = text.splitlines()
    lines[k] = new(lines[k])
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case, edit, changes, message", [
    ("missing column", None, {"modalities": [{"name": "a", "shape": [3], "columns": ["a0", "a1", "a9"]}]},
     r"(test|train|validation)\.csv': modality 'a': no column 'a9'; the columns are"),
    ("ragged row", lambda t: _line(t, 3, lambda l: l + ",1"), {}, r"test\.csv': row 3 has 9 columns, the header 8"),
    ("label outside the classes", lambda t: _line(t, 2, lambda l: "2" + l[l.index(","):]), {},
     r"test\.csv': label 2\.0 at row 2 is not one of the classes 0\.\.1"),
    ("not a number", lambda t: _line(t, 4, lambda l: l.replace(l.split(",")[2], "abc", 1)), {},
     r"test\.csv': row 4, column a1: 'abc' is not a number"),
    ("non-finite", lambda t: _line(t, 5, lambda l: l.replace(l.split(",")[5], "nan", 1)), {},
     r"test\.csv': modality 'b' has non-finite values in 1 example\(s\) \(first: row 5"),
    ("unknown kind", None, {"modalities": [{"name": "a", "kind": "video", "shape": [3], "columns": ["a0"]}]},
     r"unknown kind 'video'; kinds are"),
    ("spec typo", None, {"lable": "label"}, r"unknown key\(s\) \['lable'\]; accepted keys: \['delimiter'"),
    ("wrong shape", None, {"modalities": [{"name": "a", "shape": [4], "columns": {"prefix": "a"}}]},
     r"modality 'a' has 3 values per example, its declared shape \[4\] 4"),
    ("fractions in int8", None,
     {"modalities": [{"name": "a", "shape": [3], "dtype": "int8", "columns": ["a0", "a1", "a2"]}]},
     r"\.csv': modality 'a' has \d+ value\(s\) that int8 cannot hold .*int8 holds integers from -128 to 127"),
    ("overflows float32", lambda t: _line(t, 3, lambda l: l.replace(l.split(",")[2], "1e39", 1)), {},
     r"test\.csv': modality 'a': 1e\+39 in row 3 overflows float32"),
    ("classes as a string", None, {"task": {"type": "classification", "num_classes": "3"}},
     r"task 'num_classes' must be an integer from 2 to 100,000, got '3'"),
    ("a billion classes", None, {"task": {"type": "classification", "num_classes": 10 ** 9}},
     r"task 'num_classes' must be an integer from 2 to 100,000, got 1000000000"),
    ("shape as a string", None, {"modalities": [{"name": "a", "shape": "6", "columns": ["a0"]}]},
     r"modality 'a': 'shape' must be a list of positive integers \(e\.g\. \[6\]\), got '6'"),
    ("unknown dtype", None, {"modalities": [{"name": "a", "shape": [3], "dtype": "banana", "columns": ["a0"]}]},
     r"modality 'a': 'dtype' must be a numeric NumPy dtype name"),
    ("modality as a string", None, {"modalities": ["a"]}, r"each of 'modalities' must be an object"),
])
def test_bad_folders_name_the_problem(tmp_path, case, edit, changes, message):
    path = bad_folder(tmp_path, edit, **changes)
    with pytest.raises(DataFileError, match=message):
        datasets.load(path, "test")
    assert commands.main(["dataset", "check", path]) == 2, case


def test_empty_split_wrong_dtype_and_nonfinite_policies(tmp_path):
    data = toy()
    np.savez(tmp_path / "full.npz", **data)
    np.savez(tmp_path / "empty.npz", **{k: v[:0] for k, v in data.items()})
    np.savez(tmp_path / "text.npz", **{**data, "a": np.array([["x"] * 3] * 30)})
    nan = {**data, "a": data["a"].copy()}
    nan["a"][[4, 7], 1] = np.inf
    np.savez(tmp_path / "nan.npz", **nan)
    path = spec(tmp_path, {"train": "full.npz", "validation": "full.npz", "test": "empty.npz"})
    with pytest.raises(DataFileError, match=r"empty\.npz' has no example"):
        datasets.info(path)
    path = spec(tmp_path, {"train": "full.npz", "validation": "full.npz", "test": "text.npz"})
    with pytest.raises(DataFileError, match=r"text\.npz': modality 'a' has dtype <U1; expected numbers"):
        datasets.info(path)
    for policy, size in (("zero", 30), ("drop", 28)):
        path = spec(tmp_path, {"train": "full.npz", "validation": "full.npz", "test": "nan.npz"}, nonfinite=policy)
        assert datasets.info(path).splits["test"] == size
        assert np.isfinite(collect(path, "test")[0]["a"]).all()
        assert "non-finite examples: 2" in folder.check(path)


def test_standardisation_travels_with_the_model(tmp_path):
    """`"standardize": true`: the model standardises with training statistics, so it takes the files' features, in
    predict, after saving and in the export."""
    import tensorflow as tf

    from multisensory.exports import export_saved_model
    from multisensory.training import runs

    data = toy(40)
    data["a"] = data["a"] * 100 + 500
    np.savez(tmp_path / "d.npz", **data)
    path = spec(tmp_path, {s: "d.npz" for s in ("train", "validation", "test")})
    body = json.loads((tmp_path / "dataset.json").read_text())
    body["modalities"][0]["standardize"] = True
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    info = datasets.info(path)
    stats = dict(info.modality("a").standardize)
    np.testing.assert_allclose(stats["mean"], data["a"].mean(0), rtol=1e-5)
    model = zoo.create("additive_fusion", info, width=8)
    x = {"a": data["a"].astype("float32"), "b": data["b"].astype("float32")}
    np.testing.assert_allclose(model.standardizers["a"](x["a"]), (x["a"] - data["a"].mean(0)) / data["a"].std(0),
                               rtol=1e-4, atol=1e-4)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(runs.load_model(tmp_path / "m.keras").predict(x, verbose=0), expected, atol=1e-5)
    serve = tf.saved_model.load(export_saved_model(model, str(tmp_path / "export"))).signatures["serving_default"]
    np.testing.assert_allclose(serve(a=tf.constant(x["a"]), b=tf.constant(x["b"]))["logits"], expected, atol=1e-5)


def test_higgs_as_a_csv_folder_gives_the_loaders_splits_and_features(tmp_path, data_dir):
    raw = higgs.read_splits(data_dir)
    names = ["label"] + [f"low_{i}" for i in range(21)] + [f"high_{i}" for i in range(7)]
    for split, (features, labels) in raw.items():
        with open(tmp_path / f"{split}.csv", "w") as f:
            f.write(",".join(names) + "\n")
            f.writelines(",".join([str(int(y))] + [repr(float(v)) for v in row]) + "\n"
                         for row, y in zip(features, labels))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "modalities": [{"name": "low_level", "shape": [21], "columns": {"prefix": "low_"}, "standardize": True},
                       {"name": "high_level", "shape": [7], "columns": {"prefix": "high_"}, "standardize": True}],
        "task": {"type": "classification", "num_classes": 2},
        "files": {s: f"{s}.csv" for s in ("train", "validation", "test")}}))
    assert datasets.info(str(tmp_path)).splits == {"train": 6667, "validation": 333, "test": 500}
    for split in ("validation", "test"):
        x, y = collect(str(tmp_path), split)
        np.testing.assert_array_equal(x["low_level"], raw[split][0][:, :21])
        np.testing.assert_array_equal(x["high_level"], raw[split][0][:, 21:])
        np.testing.assert_array_equal(y, raw[split][1])
        loader_x, _ = next(iter(datasets.load("higgs", split, data_dir=data_dir, batch_size=1000, shuffle=False)))
        np.testing.assert_array_equal(x["low_level"], loader_x["low_level"])
    folder_info, higgs_info = datasets.info(str(tmp_path)), datasets.info("higgs", data_dir=data_dir)
    for name in ("low_level", "high_level"):  # the same statistics inside the model
        folder_stats = folder_info.modality(name).get_config()["standardize"]
        higgs_stats = higgs_info.modality(name).get_config()["standardize"]
        for key in ("mean", "std"):
            np.testing.assert_allclose(folder_stats[key], higgs_stats[key], rtol=1e-4, atol=1e-6)


def test_variable_length_sequences_from_padded_or_ragged_arrays(tmp_path):
    def arrays(n, seed):
        r = np.random.default_rng(seed)
        lengths = r.integers(1, 6, n)
        return lengths, r.normal(size=(lengths.sum(), 3)).astype("float32"), r.normal(size=(n, 4)), r.integers(0, 2, n)

    lengths, steps, vec, labels = arrays(24, 0)
    np.savez(tmp_path / "train.npz", vec=vec, seq=steps, seq_lengths=lengths, label=labels)
    for split, seed in (("validation", 1), ("test", 2)):  # already padded, to 7 steps
        l, s, v, y = arrays(12, seed)
        padded = np.zeros((12, 7, 3), "float32")
        for i, end in enumerate(np.cumsum(l)):
            padded[i, 7 - l[i]:] = s[end - l[i]:end]
        np.savez(tmp_path / f"{split}.npz", vec=v, seq=padded, label=y)
    body = {"modalities": [{"name": "vec", "shape": [4]},
                           {"name": "seq", "kind": "sequence", "shape": [None, 3], "standardize": True}],
            "task": {"type": "classification", "num_classes": 2},
            "files": {s: f"{s}.npz" for s in ("train", "validation", "test")}}
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    path = str(tmp_path)
    info = datasets.info(path)
    assert info.modality("seq").shape == (None, 3)
    x, _ = collect(path, "train")
    assert x["seq"].shape == (24, 5, 3)
    for i, end in enumerate(np.cumsum(lengths)):  # front-padded with zero steps
        np.testing.assert_array_equal(x["seq"][i, 5 - lengths[i]:], steps[end - lengths[i]:end])
        assert not x["seq"][i, :5 - lengths[i]].any()
    stats = info.modality("seq").get_config()["standardize"]  # over the real steps only
    np.testing.assert_allclose(stats["mean"], steps.mean(0), rtol=1e-5, atol=1e-6)
    model = zoo.create("additive_fusion", info, width=8)
    model.compile()
    model.fit(datasets.load(path, "train", batch_size=8), epochs=1, verbose=0)
    predictions = model.predict(datasets.load(path, "test", batch_size=12, shuffle=False), verbose=0)
    assert predictions.shape == (12, 2) and np.isfinite(predictions).all()

    np.savez(tmp_path / "train.npz", vec=vec, seq=steps, seq_lengths=lengths + 1, label=labels)
    with pytest.raises(DataFileError, match="'seq_lengths' must hold 24 non-negative integers summing to the"):
        datasets.info(path)
    body["files"] = {s: "all.csv" for s in ("train", "validation", "test")}
    (tmp_path / "all.csv").write_text("label,a\n0,1\n")
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    with pytest.raises(DataFileError, match="'seq' has a variable number of steps, which a table cannot hold"):
        datasets.info(path)
    body["modalities"][1]["kind"] = "vector"
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    with pytest.raises(DataFileError, match="only a sequence's \\(or text's\\) first dimension may be null"):
        datasets.info(path)


def test_standardisation_is_continuous_at_a_real_zero_and_keeps_padding_and_dropped_modalities_at_zero(tmp_path):
    """A grayscale image with `"standardize": true`: a black pixel is standardised like any other value (before, an
    all-zero vector along the last axis was kept at 0, the mean, while the statistics counted it). A sequence's
    front padding stays 0, a real all-zero step inside it does not; a dropped image reaches the model as 0."""
    rng = np.random.default_rng(0)
    n = 24
    image = rng.integers(0, 256, (n, 4, 4, 1)).astype("float32")
    image[:, 0, 0] = 0.0  # black pixels
    seq = rng.normal(size=(n, 5, 2)).astype("float32") + 3.0
    seq[:, :2] = 0.0  # two steps of front padding
    seq[:, 3] = 0.0  # a real all-zero step
    np.savez(tmp_path / "d.npz", image=image, seq=seq, label=rng.integers(0, 2, n))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "modalities": [{"name": "image", "kind": "image", "shape": [4, 4, 1], "standardize": True},
                       {"name": "seq", "kind": "sequence", "shape": [5, 2], "standardize": True}],
        "task": {"type": "classification", "num_classes": 2},
        "files": {s: "d.npz" for s in ("train", "validation", "test")}}))
    path = str(tmp_path)
    info = datasets.info(path)
    image_stats, seq_stats = (dict(info.modality(m).standardize) for m in ("image", "seq"))
    np.testing.assert_allclose(image_stats["mean"], image.mean(), rtol=1e-5)
    real = seq[:, 2:].reshape(-1, 2)  # statistics over the real steps, the all-zero one included
    np.testing.assert_allclose(seq_stats["mean"], real.mean(0), rtol=1e-5)
    np.testing.assert_allclose(seq_stats["std"], real.std(0), rtol=1e-5)

    model = zoo.create("additive_fusion", info, width=8)
    at_zero, nudged = image[:1].copy(), image[:1].copy()
    nudged[0, 0, 0] = 1e-3
    standardise = model.standardizers["image"]
    jump = float(np.abs(standardise(nudged) - standardise(at_zero)).max())
    assert jump == pytest.approx(1e-3 / image_stats["std"][0], rel=1e-2)
    assert float(standardise(at_zero)[0, 0, 0, 0]) == pytest.approx(-image_stats["mean"][0] / image_stats["std"][0],
                                                                    rel=1e-5)
    logits = [model.predict({"image": x, "seq": seq[:1]}, verbose=0) for x in (at_zero, nudged)]
    assert np.abs(logits[0] - logits[1]).max() < 1e-3  # no jump in the outputs

    out = standardise.__class__(info.modality("seq"))(seq[:2]).numpy()
    np.testing.assert_array_equal(out[:, :2], 0.0)  # front padding
    np.testing.assert_allclose(out[:, 3], np.broadcast_to(-np.array(seq_stats["mean"]) / seq_stats["std"], (2, 2)),
                               rtol=1e-5)  # the real all-zero step is standardised

    (dropped, _), = list(datasets.load(path, "test", batch_size=n, shuffle=False, drop=("image", "seq")))
    np.testing.assert_array_equal(standardise(dropped["image"]), 0.0)
    np.testing.assert_array_equal(dropped["seq"], 0.0)  # a dropped sequence is all padding
    (some, _), = list(datasets.load(path, "train", batch_size=n, shuffle=False, dropout={"image": 0.5}, seed=1))
    gone = np.all(standardise(some["image"]).numpy() == 0, axis=(1, 2, 3))
    assert 0 < gone.sum() < n
    np.testing.assert_array_equal(some["image"][~gone], image[~gone])


def test_a_value_that_does_not_fit_the_declared_dtype_is_refused(tmp_path):
    data = {**toy(), "a": np.arange(90).reshape(30, 3)}
    np.savez(tmp_path / "ok.npz", **data)
    data["a"][6, 2] = 300
    np.savez(tmp_path / "big.npz", **data)
    path = spec(tmp_path, {"train": "ok.npz", "validation": "ok.npz", "test": "big.npz"})
    body = json.loads((tmp_path / "dataset.json").read_text())
    body["modalities"][0]["dtype"] = "int8"
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    with pytest.raises(DataFileError, match=r"big\.npz': modality 'a' has 1 value\(s\) that int8 cannot hold "
                                            r"\(first: 300 in row 7\)"):
        folder.check(path)


def test_check_reports_each_modalitys_scale_and_suggests_standardising_raw_features(tmp_path):
    data = {split: toy(seed=i) for i, split in enumerate(("train", "validation", "test"))}
    for d in data.values():
        d["a"] = d["a"] * 1000 + 50  # raw units, far from unit scale
    for split, d in data.items():
        write_table(tmp_path / f"{split}.csv", d)
    path = spec(tmp_path, {s: f"{s}.csv" for s in data})
    lines = {line.split(":")[0].strip(): line for line in folder.check(path).splitlines()}
    assert "far from unit scale: add \"standardize\": true" in lines["a"]
    assert "far from unit scale" not in lines["b"] and "stds in [" in lines["b"]
    mean = data["train"]["a"].mean(0)
    assert f"means in [{mean.min():.4g}, {mean.max():.4g}]" in lines["a"]
    body = json.loads((tmp_path / "dataset.json").read_text())
    body["modalities"][0]["standardize"] = True
    (tmp_path / "dataset.json").write_text(json.dumps(body))
    assert "standardised by the model" in folder.check(path)


def test_a_spec_reads_only_files_inside_its_folder_and_accepts_a_byte_order_mark(tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("label,a0\nhunter2,1\n")
    folder_path = tmp_path / "data"
    folder_path.mkdir()
    (folder_path / "link.csv").symlink_to(outside)
    for name in (str(outside), "../secret.csv", "link.csv", "/etc/passwd"):
        path = spec(folder_path, {s: name for s in ("train", "validation", "test")})
        with pytest.raises(DataFileError, match="lies outside the dataset folder") as error:
            datasets.info(path)
        assert "hunter2" not in str(error.value) and "root:" not in str(error.value)
    data = toy()
    write_table(folder_path / "train.csv", data)
    text = (folder_path / "train.csv").read_text()
    (folder_path / "bom.csv").write_bytes("\ufeff".encode() + text.encode())
    path = spec(folder_path, {"train": "bom.csv", "validation": "train.csv", "test": "train.csv"})
    np.testing.assert_allclose(collect(path, "train")[1], data["label"])
