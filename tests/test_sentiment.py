"""CMU-MOSI / MOSEI (MulT and MMSA pickles, SDK .csd) and UR-FUNNY v2, on small files the tests write."""

import os
import pickle

import keras
import numpy as np
import pytest

from multisensory import datasets, zoo
from multisensory.datasets import sentiment, ur_funny
from multisensory.training import runs
from sentiment_fixtures import write_csd, write_mmsa_pickle, write_mult_pickle, write_ur_funny


def collect(name, split, data_dir, **options):
    xs, ys = [], []
    for x, y in datasets.load(name, split, data_dir=data_dir, batch_size=100, **options):
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(y.numpy())
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)


@pytest.fixture(autouse=True)
def fresh_cache():
    sentiment.read_splits.cache_clear()
    ur_funny.read_splits.cache_clear()


def test_default_infos_name_the_three_modalities():
    for name, vision in (("mosi", 47), ("mosei", 35)):
        info = datasets.info(name)
        assert [(m.name, m.shape) for m in info.modalities] == [("text", (None, 300)), ("audio", (None, 74)),
                                                                ("vision", (None, vision))]
        assert info.task.type == "regression" and info.task.value_range == (-3, 3)
    assert [m.shape for m in datasets.info("ur_funny").modalities] == [(None, 300), (None, 81), (None, 371)]


def test_mult_pickle(tmp_path):
    written = write_mult_pickle(tmp_path / "mosi")
    info = datasets.info("mosi", data_dir=str(tmp_path))
    assert [m.shape for m in info.modalities] == [(50, 300), (50, 5), (50, 20)]
    assert info.splits == {"train": 12, "validation": 4, "test": 6}
    x, y = collect("mosi", "test", str(tmp_path))
    np.testing.assert_allclose(y, written["test"]["labels"].reshape(-1))
    np.testing.assert_array_equal(x["text"], written["test"]["text"])
    assert np.all(x["audio"][:, :3, 0] == 0), "-inf becomes 0"
    np.testing.assert_array_equal(x["audio"][:, 3:], written["test"]["audio"][:, 3:])


def test_mmsa_pickle_with_its_own_lengths(tmp_path):
    written = write_mmsa_pickle(tmp_path / "mosei")
    info = datasets.info("mosei", data_dir=str(tmp_path))
    assert [m.shape for m in info.modalities] == [(50, 768), (20, 74), (30, 35)]
    x, y = collect("mosei", "validation", str(tmp_path))
    np.testing.assert_allclose(y, written["valid"]["regression_labels"])
    assert x["vision"].shape == (4, 30, 35)
    write_mmsa_pickle(tmp_path / "mosei", name="aligned_50.pkl", lengths=(50, 50, 50))
    sentiment.read_splits.cache_clear()
    aligned = datasets.info("mosei", data_dir=str(tmp_path))
    assert [m.shape[0] for m in aligned.modalities] == [50, 50, 50], "aligned_50.pkl comes first"
    chosen = datasets.info("mosei", data_dir=str(tmp_path), file="unaligned_50.pkl")
    assert [m.shape[0] for m in chosen.modalities] == [50, 20, 30]


def test_sdk_csd_files(tmp_path):
    written, words = write_csd(tmp_path / "mosi")
    info = datasets.info("mosi", data_dir=str(tmp_path), max_len=40)
    assert [m.shape for m in info.modalities] == [(40, 300), (40, 74), (40, 47)]
    assert info.splits == {"train": 12, "validation": 4, "test": 4}  # 6 / 2 / 2 videos of 2 segments
    x, y = collect("mosi", "test", str(tmp_path), max_len=40)
    segments = ["vid8[0]", "vid8[1]", "vid9[0]", "vid9[1]"]
    np.testing.assert_allclose(y, [written["CMU_MOSI_Opinion_Labels", s][0, 0] for s in segments])
    for row, segment in enumerate(segments):
        audio = written["CMU_MOSI_COVAREP", segment]
        n = min(len(audio), 40)
        np.testing.assert_allclose(x["audio"][row, 40 - n:], audio[-n:], rtol=1e-6)
        assert np.all(x["audio"][row, :40 - n] == 0), "front padding"


def test_sdk_without_folds_splits_by_video(tmp_path):
    write_csd(tmp_path / "mosi", videos=20, folds=False)
    splits = sentiment.read_splits(str(tmp_path), "mosi")
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 28, "validation": 4, "test": 8}


def test_normalize_uses_training_statistics(tmp_path):
    write_mult_pickle(tmp_path / "mosi")
    x, _ = collect("mosi", "train", str(tmp_path), normalize=True)
    steps = x["vision"].reshape(-1, 20)
    steps = steps[np.any(steps != 0, axis=1)]
    np.testing.assert_allclose(steps.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(steps.std(0), 1, atol=1e-3)


def test_a_pickle_carrying_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "mosi").mkdir()
    (tmp_path / "mosi" / "mosi_data.pkl").write_bytes(pickle.dumps({"train": Payload()}))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays and plain containers"):
        datasets.load("mosi", "train", data_dir=str(tmp_path))


def test_missing_files_explain_the_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)mosi_data.pkl.*aligned_50.pkl.*csd"):
        datasets.load("mosi", "train", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="humor_label_sdk.pkl"):
        datasets.load("ur_funny", "train", data_dir=str(tmp_path))


def test_ur_funny_v2_pickles(tmp_path):
    ids, language, covarep, labels, vocabulary = write_ur_funny(tmp_path / "ur_funny")
    info = datasets.info("ur_funny", data_dir=str(tmp_path), max_len=12)
    assert [m.shape for m in info.modalities] == [(12, 300), (12, 81), (12, 371)]
    assert info.splits == {"train": 8, "validation": 3, "test": 4}
    x, y = collect("ur_funny", "validation", str(tmp_path), max_len=12)
    np.testing.assert_array_equal(y, [labels[i] for i in ids["dev"]])
    first = ids["dev"][0]
    words = language[first]["punchline_embedding_indexes"]
    np.testing.assert_allclose(x["text"][0, 12 - len(words):], vocabulary[words], rtol=1e-6)
    np.testing.assert_allclose(x["audio"][0, 12 - len(words):], covarep[first]["punchline_features"], rtol=1e-6)
    with_context, _ = collect("ur_funny", "validation", str(tmp_path), max_len=12, context=True)
    context_words = sum(len(c) for c in language[first]["context_embedding_indexes"])
    assert np.count_nonzero(with_context["text"][0].any(-1)) == min(12, len(words) + context_words)


def test_models_train_on_the_mosi_format(tmp_path):
    write_mult_pickle(tmp_path / "mosi")
    info = datasets.info("mosi", data_dir=str(tmp_path))
    for name in ("additive_fusion", "late_fusion", "ef_lstm", "tfn", "lmf"):
        keras.utils.set_random_seed(0)
        model = zoo.create(name, info, hidden=(16,))  # the sentiment baselines report every sentiment metric
        model.compile()
        history = model.fit(datasets.load("mosi", "train", data_dir=str(tmp_path), batch_size=4), epochs=3,
                            verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0], name
        assert {"mae", "pearson", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7"} <= set(
            history.history)
    x, _ = next(iter(datasets.load("mosi", "test", data_dir=str(tmp_path), batch_size=3)))
    assert zoo.create("early_fusion", info).predict(x, verbose=0).shape == (3,), "fixed lengths allow flattening"
    metrics = runs.train("late_fusion", "mosi", str(tmp_path / "run"), data_dir=str(tmp_path), epochs=1,
                         batch_size=4, export=True, verbose=0)
    assert "acc7" in metrics
    assert os.path.isdir(tmp_path / "run" / "export" / "late_fusion" / "1")
