"""Sharded TFRecord dataset folders: converted from any dataset, streamed in the source's examples and a seed's
order, trained on from the command line, statistics cached, and bad shards named."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from multisensory import datasets
from multisensory.datasets import folder, shards
from multisensory.datasets.files import DataFileError
from multisensory.training import commands


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards") / "av")
    shards.write("synthetic_av", out, shards=3, num_examples=100)
    return out


def _epoch(path, split, seed=0, shuffle=None, **options):
    xs, ys = [], []
    for x, y in datasets.load(path, split, batch_size=32, seed=seed, shuffle=shuffle, **options):
        xs.append(x["audio"].numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def test_shards_stream_the_sources_examples_in_a_seeds_order(converted):
    spec = json.load(open(os.path.join(converted, "dataset.json")))
    assert spec["examples"] == {"train": 100, "validation": 100, "test": 100}
    assert spec["files"]["train"] == "train-*.tfrecord" and len(os.listdir(converted)) == 10
    audio, labels = _epoch(converted, "test", shuffle=False)  # evaluation: the source's order exactly
    source_audio, source_labels = _epoch("synthetic_av", "test", shuffle=False, num_examples=100)
    np.testing.assert_array_equal(labels, source_labels)
    np.testing.assert_array_equal(audio, source_audio)
    first, again, other = (_epoch(converted, "train", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first[1], again[1])  # a seed gives one order
    assert not np.array_equal(first[1], other[1])
    train_audio, _ = _epoch("synthetic_av", "train", shuffle=False, num_examples=100)
    order = np.lexsort(first[0].reshape(100, -1).T)  # every training example once an epoch
    np.testing.assert_array_equal(first[0][order], train_audio[np.lexsort(train_audio.reshape(100, -1).T)])
    info = datasets.info(converted)
    assert info.splits == {"train": 100, "validation": 100, "test": 100} and info.task.num_classes == 10


def test_statistics_stream_once_and_are_cached_until_a_shard_changes(converted, tmp_path, monkeypatch):
    import shutil

    path = str(tmp_path / "av")
    shutil.copytree(converted, path)
    spec = json.load(open(os.path.join(path, "dataset.json")))
    spec["modalities"][1]["standardize"] = True
    del spec["examples"]  # counted by the same pass
    json.dump(spec, open(os.path.join(path, "dataset.json"), "w"))
    audio, _ = _epoch("synthetic_av", "train", shuffle=False, num_examples=100)
    info = datasets.info(path)
    steps = audio.reshape(-1, audio.shape[-1]).astype("float64")
    statistics = dict(info.modalities[1].standardize)
    np.testing.assert_allclose(statistics["mean"], steps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(statistics["std"], steps.std(0), rtol=1e-4, atol=1e-6)
    assert info.splits["validation"] == 100 and os.path.exists(os.path.join(path, shards.CACHE))

    def no_reading(*args, **kwargs):
        raise AssertionError("the shards were read again")

    monkeypatch.setattr(shards.tf.data, "TFRecordDataset", no_reading)
    assert datasets.info(path).splits["train"] == 100  # from the cache
    shard = os.path.join(path, "train-00000-of-00003.tfrecord")
    os.utime(shard, ns=(os.stat(shard).st_atime_ns, os.stat(shard).st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="read again"):
        datasets.info(path)


def test_convert_and_train_from_the_command_line(tmp_path, capsys):
    out = str(tmp_path / "av")
    assert commands.main(["dataset", "convert", "synthetic_av", out, "--shards", "2", "--dataset-option",
                          "num_examples=64"]) == 0
    assert "train 64 examples" in capsys.readouterr().out
    assert commands.main(["dataset", "check", out]) == 0
    assert "64 examples in 2 shard(s)" in capsys.readouterr().out
    assert commands.main(["train", "--model", "additive_fusion", "--dataset", out, "--epochs", "2", "--config",
                          "width=8", "--batch-size", "16", "--noise", "audio=1", "--out", str(tmp_path / "run"),
                          "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["accuracy"] <= 1 and np.isfinite(metrics["loss"])
    assert commands.main(["dataset", "convert", "synthetic_av", out]) == 2  # a dataset is there already


def _write(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for feature in examples:
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_bad_shards_are_named(converted, tmp_path):
    import shutil

    path = str(tmp_path / "av")
    shutil.copytree(converted, path)
    spec_path = os.path.join(path, "dataset.json")
    spec = json.load(open(spec_path))
    spec["files"]["test"] = "nothing-*.tfrecord"
    json.dump(spec, open(spec_path, "w"))
    with pytest.raises(DataFileError, match=r"split 'test': no file matches 'nothing-\*\.tfrecord'"):
        datasets.load(path, "test")
    spec["files"]["test"] = "test-*.tfrecord"
    json.dump(spec, open(spec_path, "w"))
    wrong = os.path.join(path, "test-00003-of-00003.tfrecord")  # a shard without the audio field
    _write(wrong, [{"image": tf.train.Feature(float_list=tf.train.FloatList(value=[0.0] * 256)),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}])
    with pytest.raises(DataFileError, match=r"test-00003-of-00003\.tfrecord': record 1 has no field 'audio'"):
        datasets.load(path, "test")
    os.remove(wrong)
    shard = os.path.join(path, "train-00001-of-00003.tfrecord")
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[: len(data) - 300])  # cut inside its last record
    with pytest.raises(DataFileError, match=r"train-00001-of-00003\.tfrecord' is truncated or corrupt after record"):
        folder.check(path)
    assert commands.main(["dataset", "check", path]) == 2


@pytest.mark.parametrize("kind", ["npz", "parquet", "csv"])
def test_shards_of_the_folder_formats_stream_with_the_folders_checks(tmp_path, kind):
    rng = np.random.default_rng(0)
    parts = [(rng.normal(size=(n, 3)).round(3), rng.integers(0, 2, n)) for n in (7, 5, 9)]
    for i, (a, label) in enumerate(parts):
        if kind == "npz":
            np.savez(tmp_path / f"part-{i}.npz", a=a, label=label)
        elif kind == "parquet":
            import pyarrow
            import pyarrow.parquet

            pyarrow.parquet.write_table(pyarrow.table({"label": label, **{f"a{j}": a[:, j] for j in range(3)}}),
                                        tmp_path / f"part-{i}.parquet")
        else:
            rows = "\n".join(",".join([str(int(y))] + [f"{v:g}" for v in x]) for x, y in zip(a, label))
            (tmp_path / f"part-{i}.csv").write_text("label,a0,a1,a2\n" + rows + "\n")
    modality = {"name": "a", "shape": [3], "standardize": True}
    if kind != "npz":
        modality["columns"] = ["a0", "a1", "a2"]
    spec = {"modalities": [modality], "task": {"type": "classification", "num_classes": 2},
            "files": {"train": f"part-*.{kind}", "validation": [f"part-1.{kind}"], "test": [f"part-0.{kind}",
                                                                                             f"part-2.{kind}"]}}
    (tmp_path / "dataset.json").write_text(json.dumps(spec))
    path = str(tmp_path)
    info = datasets.info(path)
    assert info.splits == {"train": 21, "validation": 5, "test": 16}
    every = np.concatenate([a for a, _ in parts])
    np.testing.assert_allclose(dict(info.modalities[0].standardize)["mean"], every.mean(0), rtol=1e-6, atol=1e-9)
    x, y = zip(*[(x["a"].numpy(), y.numpy()) for x, y in datasets.load(path, "test", batch_size=4)])
    np.testing.assert_allclose(np.concatenate(x), np.concatenate([parts[0][0], parts[2][0]]), rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate(y), np.concatenate([parts[0][1], parts[2][1]]))
    seen = np.concatenate([y.numpy() for _, y in datasets.load(path, "train", batch_size=8, seed=1)])
    assert sorted(seen.tolist()) == sorted(np.concatenate([p[1] for p in parts]).tolist())
    assert "21 examples in 3 shard(s)" in folder.check(path)
    with pytest.raises(ValueError, match="read by Python .* convert it to TFRecord shards"):
        datasets.load(path, "train", data_service="grpc://127.0.0.1:1")
    if kind == "npz":  # a shard missing a modality is named by the folder's reader
        np.savez(tmp_path / "part-3.npz", b=parts[0][0], label=parts[0][1])
        with pytest.raises(DataFileError, match=r"part-3\.npz': modality 'a' is missing"):
            datasets.info(path)


def test_a_tf_data_service_runs_the_training_pipeline(converted, tmp_path):
    """A dispatcher and a worker in this process: the batches come from the service, every training example once an
    epoch, and a run trains from them."""
    from multisensory.training import runs

    service = tf.data.experimental.service
    dispatcher = service.DispatchServer()
    worker = service.WorkerServer(service.WorkerConfig(dispatcher_address=dispatcher.target.split("://")[1]))
    served = np.concatenate([y.numpy() for _, y in datasets.load(converted, "train", batch_size=16, seed=0,
                                                                 data_service=dispatcher.target)])
    local = np.concatenate([y.numpy() for _, y in datasets.load(converted, "train", batch_size=16, seed=0)])
    assert sorted(served.tolist()) == sorted(local.tolist())
    metrics = runs.train("additive_fusion", converted, str(tmp_path / "run"), epochs=1, batch_size=16,
                         config={"width": 8}, export=False, verbose=0, data_service=dispatcher.target)
    assert np.isfinite(metrics["loss"])
    with pytest.raises(ValueError, match="must be a dispatcher address"):
        datasets.load(converted, "train", data_service="localhost:5050")
    assert commands.main(["data-service", "--worker"]) == 2
    worker.stop()
    dispatcher.stop()


def test_the_data_service_command_serves_a_pipeline(converted):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "multisensory.training.commands", "data-service", "--local",
                                "--port", "0", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first, second = process.stdout.readline(), process.stdout.readline()
        assert first.startswith("dispatcher at grpc://localhost:") and second.startswith("worker registered with"), \
            (first, second)
        address = first.split()[2].rstrip(":")
        labels = np.concatenate([y.numpy() for _, y in datasets.load(converted, "test", batch_size=50,
                                                                      data_service=address)])
        assert len(labels) == 100
    finally:
        process.terminate()
        process.wait(20)


def test_a_shard_that_disappears_mid_epoch_is_an_error_naming_it(converted, tmp_path):
    import shutil

    path = str(tmp_path / "av")
    shutil.copytree(converted, path)
    batches = iter(datasets.load(path, "test", batch_size=10, shuffle=False))
    next(batches)  # reading the first shard
    os.remove(os.path.join(path, "test-00002-of-00003.tfrecord"))
    with pytest.raises(tf.errors.NotFoundError, match=r"test-00002-of-00003\.tfrecord"):
        for _ in batches:
            pass


def _variable_arrays(n, seed):
    """Sequences of 0 to 5 steps of 3 features (the first example's first real step all zero), a vector, labels."""
    r = np.random.default_rng(seed)
    lengths = r.integers(0, 6, n)
    lengths[0] = 2
    steps = r.normal(size=(lengths.sum(), 3)).astype("float32")
    steps[0] = 0.0
    return lengths, steps, r.normal(size=(n, 4)).astype("float32"), r.integers(0, 2, n)


def test_variable_length_modalities_stream_from_tfrecord_and_npz_shards(tmp_path):
    """A `[null, 3]` sequence with its lengths: converted to TFRecord shards and split into `.npz` shards, it streams
    as the in-memory folder gives it (front-padded, the same statistics over the real steps); a batch is padded to its
    own longest example; noise goes on the real steps (a real all-zero first step included), never the padding; the
    "zero" and "drop" policies reach inside a sequence; a record that is not whole steps is named."""
    source, npz = tmp_path / "source", tmp_path / "npz"
    source.mkdir(), npz.mkdir()
    body = {"modalities": [{"name": "vec", "shape": [4]},
                           {"name": "seq", "kind": "sequence", "shape": [None, 3], "standardize": True}],
            "task": {"type": "classification", "num_classes": 2}}
    for split, seed in (("train", 0), ("validation", 1), ("test", 2)):
        lengths, steps, vec, labels = _variable_arrays(40, seed)
        np.savez(source / f"{split}.npz", vec=vec, seq=steps, seq_lengths=lengths, label=labels)
        ends = np.cumsum(lengths)
        for k in range(2):  # two shards of 20 examples, as a folder's .npz with lengths
            rows = range(20 * k, 20 * (k + 1))
            np.savez(npz / f"{split}-{k}.npz", vec=vec[20 * k:20 * (k + 1)], label=labels[20 * k:20 * (k + 1)],
                     seq=np.concatenate([steps[ends[i] - lengths[i]:ends[i]] for i in rows]),
                     seq_lengths=lengths[20 * k:20 * (k + 1)])
    (source / "dataset.json").write_text(json.dumps({**body, "files": {s: f"{s}.npz" for s in folder.SPLITS}}))
    (npz / "dataset.json").write_text(json.dumps({**body, "files": {s: f"{s}-*.npz" for s in folder.SPLITS}}))
    converted = str(tmp_path / "tfrecord")
    shards.write(str(source), converted, shards=3)

    def whole(path, **options):
        return next(iter(datasets.load(path, "test", batch_size=40, shuffle=False, **options)))

    expected_x, expected_y = whole(str(source))
    assert expected_x["seq"].shape == (40, 5, 3)
    statistics = datasets.info(str(source)).modality("seq").get_config()["standardize"]
    for path in (converted, str(npz)):
        x, y = whole(path)
        np.testing.assert_array_equal(x["seq"], expected_x["seq"])
        np.testing.assert_array_equal(x["vec"], expected_x["vec"])
        np.testing.assert_array_equal(y, expected_y)
        streamed = datasets.info(path).modality("seq").get_config()["standardize"]
        np.testing.assert_allclose(streamed["mean"], statistics["mean"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(streamed["std"], statistics["std"], rtol=1e-5, atol=1e-7)
    lengths = _variable_arrays(40, 2)[0]
    batches = list(datasets.load(converted, "test", batch_size=8, shuffle=False))
    assert [b[0]["seq"].shape[1] for b in batches] == [max(lengths[i:i + 8].max(), 1) for i in range(0, 40, 8)]
    noisy = whole(converted, noise={"seq": 1.0})[0]["seq"].numpy()
    assert all(not noisy[i, :5 - lengths[i]].any() for i in range(40))  # padding stays exactly 0
    assert noisy[0, 3].all()  # the real all-zero first step of example 0 gets noise
    wrong = os.path.join(converted, "test-00003-of-00003.tfrecord")
    _write(wrong, [{"vec": tf.train.Feature(float_list=tf.train.FloatList(value=[0.0] * 4)),
                    "seq": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * 7)),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}])
    with pytest.raises(DataFileError, match=r"field 'seq' of record 1 is float_list of 7 value\(s\); the spec says "
                                            r"float_list of steps of 3 values each"):
        datasets.load(converted, "test")
    # a NaN inside one example's sequence: set to 0, or the example left out
    _write(wrong, [{"vec": tf.train.Feature(float_list=tf.train.FloatList(value=[0.0] * 4)),
                    "seq": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, float("nan"), 2.0] * 2)),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}])
    spec_path = os.path.join(converted, "dataset.json")
    for policy, count in (("zero", 41), ("drop", 40)):
        spec = json.load(open(spec_path))
        spec["nonfinite"] = policy
        spec.pop("examples", None)
        json.dump(spec, open(spec_path, "w"))
        x, _ = next(iter(datasets.load(converted, "test", batch_size=64, shuffle=False)))
        assert len(x["seq"]) == count and np.isfinite(x["seq"].numpy()).all(), policy
        if policy == "zero":
            np.testing.assert_array_equal(x["seq"][40, -2:], [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])
