"""Atomic writes: a file or folder appears complete under its name, or not at all.

Each writer writes to a temporary name in the destination's folder and renames it into place (`os.replace`, atomic
on POSIX within one file system), so a process killed mid-write (or a full disk) leaves the previous version intact
and at most a `.tmp-*` leftover, never a truncated file under the real name. A writer that resumes a killed one's
work removes such leftovers (`remove_leftovers`).
"""

import contextlib
import errno
import json
import math
import os
import re
import resource
import shutil
import uuid

import numpy as np



def temporary_name(name):
    """The name `destination` writes `name` under in the same folder: `.<stem>.tmp-<8 hex digits>[.<extension>]`
    (the extension kept, for writers that check it). `LEFTOVER` matches every such name."""
    stem, dot, extension = name.partition(".")
    return f".{stem}.tmp-{uuid.uuid4().hex[:8]}{dot}{extension}"


LEFTOVER = re.compile(r"\..+\.tmp-[0-9a-f]{8}(\..*)?")


@contextlib.contextmanager
def destination(path):
    """Yields a temporary path beside `path` (same extension, for writers that check it); renames it to `path` when
    the block succeeds, removes it when it fails."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, temporary_name(name))
    try:
        yield temporary
        if os.path.isdir(temporary):
            if os.path.exists(path):
                raise FileExistsError(f"'{path}' exists already.")
            os.rename(temporary, path)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)


def remove_leftovers(folder, recursive=False):
    """Removes the temporary files and folders of `destination` that writers killed mid-write left in `folder` (and
    its subfolders, with `recursive`). Only for a folder this process holds (e.g. under its run's lock): a live
    writer's temporary name looks the same."""
    if not os.path.isdir(folder):
        return
    for entry in os.scandir(folder):
        if LEFTOVER.fullmatch(entry.name):
            shutil.rmtree(entry.path, ignore_errors=True) if entry.is_dir() else os.remove(entry.path)
        elif recursive and entry.is_dir(follow_symlinks=False):
            remove_leftovers(entry.path, recursive=True)


def strict(value):
    """`value` with every non-finite float written as the string "inf", "-inf" or "nan" (strict JSON has no such
    numbers; an SNR of inf, no noise, appears as "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def write_json(path, payload):
    """Writes a report (metrics, settings) atomically as indented, strict JSON (non-finite numbers as strings)."""
    text = json.dumps(strict(payload), indent=2, sort_keys=True, allow_nan=False)
    with destination(path) as temporary, open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def state_bytes(model):
    """About the bytes a saved model (or its weights) takes: its variables and its optimiser's, with a margin."""
    variables = list(model.variables) + list(getattr(model.optimizer, "variables", None) or [])
    return int(1.1 * sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)) + (256 << 10)


def ensure_room(path, nbytes):
    """Raises OSError before a write of about `nbytes` to `path` that the disk's free space (ENOSPC) or the
    process's file-size limit (EFBIG, `ulimit -f`) cannot take: HDF5, which writes Keras' weights, can crash the
    process on a failed write instead of raising."""
    folder = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: writing '{path}' needs about {nbytes:,} bytes, "
                                    f"{free:,} are free")
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and nbytes > limit:
        raise OSError(errno.EFBIG, f"{os.strerror(errno.EFBIG)}: writing '{path}' needs about {nbytes:,} bytes, the "
                                   f"process's file-size limit is {limit:,} (ulimit -f)")


def save_model(model, path):
    """`model.save(path)` atomically, after `ensure_room`."""
    ensure_room(path, state_bytes(model))
    with destination(path) as temporary:
        model.save(temporary)


def save_weights(model, path):
    """`model.save_weights(path)` (a `.weights.h5` path) atomically, after `ensure_room`."""
    ensure_room(path, state_bytes(model))
    with destination(path) as temporary:
        model.save_weights(temporary)
