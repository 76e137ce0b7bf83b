"""`higgs`: the LightGBM excerpt in $MULTISENSORY_DATA and the UCI CSV format."""

import gzip

import numpy as np
import pytest

from multisensory import datasets, zoo
from multisensory.datasets import higgs


def collect(name, split, data_dir, **kw):
    xs, ys = [], []
    for x, y in datasets.load(name, split, data_dir=data_dir, batch_size=1000, shuffle=False, **kw):
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


def test_real_files_rows_balance_and_modalities(data_dir):
    info = datasets.info("higgs")
    assert [(m.name, m.shape) for m in info.modalities] == [("low_level", (21,)), ("high_level", (7,))]
    sizes = {}
    for split in ("train", "validation", "test"):
        x, y = collect("higgs", split, data_dir)
        sizes[split] = len(y)
        assert x["low_level"].shape == (len(y), 21) and x["high_level"].shape == (len(y), 7)
        assert 0.4 < y.mean() < 0.6, "signal and background both well represented"
    assert sizes == {"train": 6667, "validation": 333, "test": 500}  # 7,000 rows: 333 = round(7000 / 21)


def test_standardisation_uses_the_training_split_only_inside_the_model(data_dir):
    raw = higgs.read_splits(data_dir)
    test, _ = collect("higgs", "test", data_dir)
    np.testing.assert_array_equal(test["high_level"], raw["test"][0][:, 21:])  # the pipeline keeps the raw rows
    info = datasets.info("higgs", data_dir=data_dir)
    mean, std = raw["train"][0].astype("float64").mean(0), raw["train"][0].astype("float64").std(0)
    stats = info.modality("high_level").get_config()["standardize"]
    np.testing.assert_allclose(stats["mean"], mean[21:], rtol=1e-9)
    np.testing.assert_allclose(stats["std"], std[21:], rtol=1e-9)
    model = zoo.create("higgs_mlp", info)
    scaled = model.standardizers["high_level"](test["high_level"])
    np.testing.assert_allclose(scaled, (raw["test"][0][:, 21:] - mean[21:]) / std[21:], rtol=1e-4, atol=1e-5)
    # a real zero is standardised like any value; a dropped modality is the training mean, so it reaches the model as 0
    np.testing.assert_allclose(model.standardizers["high_level"](np.zeros((2, 7), "float32")),
                               np.broadcast_to(-mean[21:] / std[21:], (2, 7)), rtol=1e-5)
    dropped, _ = collect("higgs", "test", data_dir, drop=("high_level",))
    np.testing.assert_array_equal(model.standardizers["high_level"](dropped["high_level"]), 0)
    np.testing.assert_array_equal(dropped["low_level"], test["low_level"])


@pytest.mark.parametrize("file_name", ["HIGGS.csv", "HIGGS.csv.gz"])
def test_uci_csv_layout_holds_out_the_last_rows(tmp_path, file_name):
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.integers(0, 2, 440), rng.normal(size=(440, 28)).round(3)])
    text = "\n".join(",".join(f"{v:.6e}" for v in row) for row in table) + "\n"
    (tmp_path / "higgs").mkdir()
    path = tmp_path / "higgs" / file_name
    path.write_bytes(gzip.compress(text.encode()) if file_name.endswith(".gz") else text.encode())
    higgs.read_splits.cache_clear()
    splits = higgs.read_splits(str(tmp_path))
    assert higgs.holdout_rows(440) == 20 and higgs.holdout_rows(11_000_000) == 500_000
    np.testing.assert_allclose(splits["test"][0], table[-20:, 1:], rtol=1e-6)
    np.testing.assert_allclose(splits["validation"][0], table[-40:-20, 1:], rtol=1e-6)
    np.testing.assert_array_equal(splits["train"][1], table[:-40, 0])
    x, y = collect("higgs", "test", str(tmp_path))
    assert len(y) == 20 and x["low_level"].shape == (20, 21)


def test_wrong_columns_and_missing_files(tmp_path):
    (tmp_path / "higgs").mkdir()
    with pytest.raises(FileNotFoundError, match="HIGGS.csv.gz"):
        datasets.load("higgs", "train", data_dir=str(tmp_path))
    (tmp_path / "higgs" / "HIGGS.csv").write_text("1,2,3\n0,1,2\n")
    higgs.read_splits.cache_clear()
    with pytest.raises(ValueError, match="has 3 columns; expected 29"):
        datasets.load("higgs", "train", data_dir=str(tmp_path))
