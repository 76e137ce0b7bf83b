"""Dataset files are checked, not trusted: errors name the file (row, column, member); caches notice changes."""

import gzip
import io
import os
import tarfile
import threading
import wave

import numpy as np
import pytest

from multisensory import datasets
from multisensory.datasets import av_mnist, cifar, higgs
from multisensory.datasets.files import DataFileError


def write_higgs(folder, table, delimiter="\t"):
    (folder / "higgs").mkdir(exist_ok=True)
    for name, rows in (("binary.train", table[:30]), ("binary.test", table[30:])):
        text = "\n".join(delimiter.join(str(v) for v in row) for row in rows) + "\n"
        (folder / "higgs" / name).write_text(text)


def higgs_table(n=40):
    rng = np.random.default_rng(0)
    return np.column_stack([rng.integers(0, 2, n), rng.normal(size=(n, 28)).round(3)]).astype(object)


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.asarray(samples, "<i2").tobytes())


def write_av_mnist(folder, images=None, labels=None):
    (folder / "mnist").mkdir(exist_ok=True)
    (folder / "fsdd" / "recordings").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 28, 28)).astype("uint8") if images is None else images
    labels = np.arange(20) % 10 if labels is None else labels
    np.savez(folder / "mnist" / "mnist.npz", x_train=images[:10], y_train=labels[:10], x_test=images[10:],
             y_test=labels[10:])
    for digit in range(10):
        write_wav(folder / "fsdd" / "recordings" / f"{digit}_a_0.wav", rng.integers(-99, 99, 18_262))
    return folder / "mnist" / "mnist.npz"


def test_a_nan_cell_in_higgs_names_the_file_row_and_column(tmp_path):
    table = higgs_table()
    table[4, 3] = "nan"
    write_higgs(tmp_path, table)
    with pytest.raises(DataFileError, match=r"binary\.train': 1 non-finite value\(s\) \(nan at row 5, column "
                                            r"low_level\[2\]\)"):
        higgs.read_splits(str(tmp_path))


def test_a_higgs_label_outside_0_1_is_refused_not_truncated(tmp_path):
    table = higgs_table()
    table[32, 0] = 0.5
    write_higgs(tmp_path, table)
    with pytest.raises(DataFileError, match=r"binary\.test': label 0\.5 at row 3 is not one of the classes 0\.\.1"):
        higgs.read_splits(str(tmp_path))


def test_a_ragged_or_truncated_higgs_file_is_named(tmp_path):
    (tmp_path / "higgs").mkdir()
    text = "\n".join(",".join(["1"] + ["0.5"] * 28) for _ in range(50)) + "\n"
    (tmp_path / "higgs" / "HIGGS.csv.gz").write_bytes(gzip.compress(text.encode())[:-30])
    with pytest.raises(DataFileError, match=r"HIGGS\.csv\.gz' cannot be read.*EOFError"):
        higgs.read_splits(str(tmp_path))
    (tmp_path / "higgs" / "HIGGS.csv.gz").unlink()
    (tmp_path / "higgs" / "HIGGS.csv").write_text(text + ",".join(["1"] + ["0.5"] * 27) + "\n")
    with pytest.raises(DataFileError, match=r"HIGGS\.csv' cannot be read.*ValueError"):
        higgs.read_splits(str(tmp_path))


def test_a_file_changed_on_disk_is_read_again(tmp_path):
    table = higgs_table()
    write_higgs(tmp_path, table)
    first = higgs.read_splits(str(tmp_path))["test"][0][0, 0]
    table[30, 1] = 123.0
    write_higgs(tmp_path, table)
    os.utime(tmp_path / "higgs" / "binary.test", ns=(1, 1))  # a new modification time even on coarse clocks
    assert higgs.read_splits(str(tmp_path))["test"][0][0, 0] == 123.0 != first


def test_mnist_pixels_already_scaled_are_refused(tmp_path):
    images = np.random.default_rng(0).random((20, 28, 28)).astype("float32")
    write_av_mnist(tmp_path, images=images)
    with pytest.raises(DataFileError, match=r"'x_train' must hold 0-255 integer pixels \(uint8\), got float32"):
        av_mnist.pairs("train", str(tmp_path), num_pairs=2)


def test_labels_outside_the_classes_are_refused_not_dropped(tmp_path):
    write_av_mnist(tmp_path, labels=np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
    with pytest.raises(DataFileError, match=r"mnist\.npz': label 11 at row 11 is not one of the classes 0\.\.9"):
        av_mnist.pairs("train", str(tmp_path), num_pairs=2)


def test_truncated_npz_and_wav_files_are_named(tmp_path):
    path = write_av_mnist(tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataFileError, match=r"mnist\.npz' cannot be read.*BadZipFile"):
        av_mnist.pairs("train", str(tmp_path), num_pairs=2)
    write_av_mnist(tmp_path)
    wav = tmp_path / "fsdd" / "recordings" / "3_a_0.wav"
    wav.write_bytes(wav.read_bytes()[:1000])
    with pytest.raises(DataFileError, match=r"3_a_0\.wav' is truncated or empty: its header announces 18262"):
        av_mnist.pairs("train", str(tmp_path), num_pairs=2)
    wav.write_bytes(b"RIFX" + bytes(40))
    with pytest.raises(DataFileError, match=r"3_a_0\.wav' cannot be read.*Error"):
        av_mnist.pairs("train", str(tmp_path), num_pairs=2)


def test_a_fifo_named_like_a_recording_is_refused_without_blocking(tmp_path):
    write_av_mnist(tmp_path)
    fifo = tmp_path / "fsdd" / "recordings" / "5_b_0.wav"
    os.mkfifo(fifo)
    result = {}

    def load():
        try:
            av_mnist.pairs("train", str(tmp_path), num_pairs=2)
        except DataFileError as error:
            result["error"] = str(error)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=60)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("the loader blocked on a FIFO")
    assert "5_b_0.wav' is not a regular file" in result["error"]


def test_a_text_file_named_jpg_in_a_cifar_archive_is_named(tmp_path):
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "c.tar.gz", "w:gz") as archive:
        for split in ("train", "test"):
            for k, name in enumerate(cifar.CIFAR10_CLASSES):
                blob = b"not an image" if (split, k) == ("test", 4) else _png()
                member = tarfile.TarInfo(f"{split}/{name}/0.{'jpg' if k == 4 else 'png'}")
                member.size = len(blob)
                archive.addfile(member, io.BytesIO(blob))
    with pytest.raises(DataFileError, match=r"c\.tar\.gz': 'test/deer/0\.jpg' is not a readable image"):
        cifar.read_splits(str(tmp_path), "cifar10")


def _png():
    import tensorflow as tf

    return tf.io.encode_png(np.zeros((32, 32, 3), "uint8")).numpy()


def test_data_dir_that_is_a_file_and_negative_pair_counts(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(FileNotFoundError, match="file' is a file, not a directory"):
        datasets.load("av_mnist", "train", data_dir=str(tmp_path / "file"))
    write_av_mnist(tmp_path)
    with pytest.raises(ValueError, match="num_pairs must be a positive integer, got -5"):
        datasets.load("av_mnist", "train", data_dir=str(tmp_path), num_pairs=-5)
