"""Reading a dataset's files: regular files only, errors that name the file, caches that notice changes.

Every loader reads through these helpers, so that:
- a file that cannot be read (truncated `.npz`, `.gz` or WAV, a bad header, a text file named `.jpg`) raises
  `DataFileError` naming the file (and the member or row where known), never a bare `BadZipFile` or `EOFError`;
- only regular files are opened: a FIFO or device named like a data file is refused instead of blocking the loader;
- what a loader caches per data directory is read again when a file under it changes (size or modification time);
- values are checked against the dataset's contract: `check_finite` names the file, row (counted from 1) and
  column of the first NaN or infinity, `check_labels` the first label outside the classes, `check_uint8_pixels`
  images that are not 0-255 integers.
"""

import contextlib
import functools
import os
import pickle
import stat
import tarfile
import wave
import zipfile
import zlib

import numpy as np


class DataFileError(ValueError):
    """A dataset file is unreadable or breaks the dataset's contract; the message names the file."""


READ_ERRORS = (zipfile.BadZipFile, EOFError, wave.Error, zlib.error, OSError, KeyError, ValueError,
               pickle.UnpicklingError, tarfile.TarError)


def regular_file(path):
    """`path` if it is a regular file; raises `DataFileError` for a FIFO, device or folder of that name."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataFileError(f"'{path}' does not exist.") from None
    if not stat.S_ISREG(mode):
        raise DataFileError(f"'{path}' is not a regular file (a folder, pipe or device); dataset files must be "
                            "regular files.")
    return path


@contextlib.contextmanager
def reading(path, member=None):
    """Turns any error raised while reading `path` (or its `member`) into a `DataFileError` naming it."""
    try:
        yield
    except DataFileError:
        raise
    except READ_ERRORS as error:
        where = f"'{path}'" + (f" (member '{member}')" if member else "")
        raise DataFileError(f"{where} cannot be read (truncated, corrupt or not the expected format): "
                            f"{type(error).__name__}: {error}") from error


def fingerprint(*paths):
    """(path, size, mtime_ns) of every file under `paths` (folders walked), sorted: changes when a file does."""
    entries = []
    for root in paths:
        if os.path.isfile(root):
            status = os.stat(root)
            entries.append((root, status.st_size, status.st_mtime_ns))
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    status = os.stat(path)
                    entries.append((path, status.st_size, status.st_mtime_ns))
    return tuple(sorted(entries))


def cache_watching(folders, maxsize=2):
    """Like `functools.lru_cache`, keyed also by the `fingerprint` of `folders(*args, **kwargs)`.

    A loader's parsed files stay cached for the process, but a file changed on disk is read again.
    """
    def decorator(function):
        @functools.lru_cache(maxsize=maxsize)
        def cached(stamp, *args, **kwargs):
            return function(*args, **kwargs)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return cached(fingerprint(*folders(*args, **kwargs)), *args, **kwargs)

        wrapper.cache_clear = cached.cache_clear
        return wrapper

    return decorator


def check_finite(array, path, columns=None):
    """Raises `DataFileError` naming `path`, the row and the column of the first NaN or infinity in `array`.

    Args:
        array: (rows, ...) numeric array.
        columns: names of the last axis (default: the column numbers).
    """
    array = np.asarray(array)
    bad = ~np.isfinite(array)
    if not bad.any():
        return array
    index = np.unravel_index(int(np.argmax(bad)), array.shape)
    column = index[-1] if array.ndim > 1 else None
    name = columns[column] if columns is not None and column is not None else column
    where = f"row {index[0] + 1}" + (f", column {name}" if column is not None else "")
    raise DataFileError(f"'{path}': {int(bad.sum())} non-finite value(s) ({array[index]} at {where}); "
                        "fix or remove those rows.")


def check_labels(labels, num_classes, path):
    """Labels as int32, after checking every one is an integer in [0, num_classes); the error names the row."""
    labels = np.asarray(labels).reshape(-1)
    valid = np.isfinite(labels) & (labels == np.round(labels)) & (labels >= 0) & (labels < num_classes) \
        if labels.dtype.kind == "f" else (labels >= 0) & (labels < num_classes)
    if not valid.all():
        row = int(np.argmin(valid))
        raise DataFileError(f"'{path}': label {labels[row]} at row {row + 1} is not one of the classes "
                            f"0..{num_classes - 1} ({int((~valid).sum())} such label(s)).")
    return labels.astype("int32")


def check_uint8_pixels(images, path, key):
    """Raises `DataFileError` unless `images` hold 0-255 integers (a float copy in [0, 1] would be scaled twice)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    integral = np.issubdtype(images.dtype, np.integer) or bool(np.all(images == np.round(images)))
    if not integral or images.size and (images.min() < 0 or images.max() > 255):
        raise DataFileError(f"'{path}': '{key}' must hold 0-255 integer pixels (uint8), got {images.dtype} in "
                            f"[{images.min()}, {images.max()}]; the loader scales pixels to [0, 1] itself.")
    return images.astype("uint8")
