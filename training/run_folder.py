"""What `train` may do with its output folder: a user's work is never overwritten or mixed by accident.

- A folder holding a finished run (`metrics.json`, the last file a run writes) is refused unless
  `existing="overwrite"` (start over: the previous run's files are removed, earlier export versions kept) or
  `"reuse"` (with the same settings, return the finished run's test metrics without training: what a rerun study
  or comparison does). A backup left beside a finished run (the run was killed after writing its results, before
  removing its backup) is removed then: it can never be resumed.
- A folder holding an interrupted run (`run.json` and a backup) resumes it when the settings are the same; different
  settings (model, dataset, config, noise, epochs, ...) are refused with the differences listed. `"resume"` insists
  on resuming: a folder with nothing to resume is an error.
- Two runs on one folder at once: the second is refused (a lock file holding the first one's process id; a lock left
  by a process that no longer runs is taken over).
"""

import json
import os
import shutil

from . import atomic

RUN_FILES = ("run.json", "metrics.json", "model.keras", "best.keras", "backup", "logs")
EXISTING = ("refuse", "resume", "overwrite", "reuse")


class RunFolderError(ValueError):
    """The output folder cannot take this run; the message says why and what to pass instead."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """An exclusive lock on a folder for this process: a file created with O_EXCL holding the process id."""

    def __init__(self, folder, name=".lock", holder="run", hint="choose another --out"):
        self.path, self.holder, self.hint = os.path.join(folder, name), holder, hint

    def __enter__(self):
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    with open(self.path) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise RunFolderError(f"Another {self.holder} (process {pid}) is writing to "
                                         f"'{os.path.dirname(self.path)}'; wait for it to finish or {self.hint}.") \
                        from None
                os.remove(self.path)  # left by a process that no longer runs
                continue
            with os.fdopen(descriptor, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise RunFolderError(f"Could not lock '{self.path}'.")

    def __exit__(self, *exc):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def differences(previous, settings):
    """Lines 'key: previous -> new' for the settings that differ."""
    keys = sorted(set(previous) | set(settings))
    return [f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in keys if previous.get(k) != settings.get(k)]


def prepare(out, settings, existing="refuse", chief=True):
    """Checks `out` against `existing` (see the module docstring); `record` then writes `run.json` once the run's
    inputs are checked and training starts.

    Returns the finished run's `metrics.json` content when `existing="reuse"` finds one with the same settings,
    else None (train).
    """
    if existing not in EXISTING:
        raise ValueError(f"existing must be one of {EXISTING}, got {existing!r}.")
    settings = json.loads(json.dumps(atomic.strict(settings)))  # as run.json holds them
    run_json = os.path.join(out, "run.json")
    previous = _read(run_json)
    finished = os.path.exists(os.path.join(out, "metrics.json")) or (
        previous is None and os.path.exists(os.path.join(out, "model.keras")))
    interrupted = previous is not None and not finished and os.path.isdir(os.path.join(out, "backup"))
    if existing == "overwrite":
        if chief:
            for name in RUN_FILES:
                path = os.path.join(out, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.path.exists(path) and os.remove(path)
    elif finished:
        if chief:
            shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)
        changed = differences(previous or {}, settings)
        if existing == "reuse" and previous is not None and not changed:
            return _read(os.path.join(out, "metrics.json"))
        raise RunFolderError(
            f"'{out}' holds a finished run (metrics.json, model.keras)"
            + (f" with other settings ({'; '.join(changed)})" if previous is not None and changed else "")
            + ". Pass --overwrite to replace it (earlier export versions are kept), or choose another --out.")
    elif previous is not None:
        changed = differences(previous, settings)
        if changed:
            raise RunFolderError(f"'{out}' holds an interrupted run with other settings: {'; '.join(changed)}. "
                                 "Rerun it with its own settings to resume, pass --overwrite to start over, or choose "
                                 "another --out.")
    if existing == "resume" and not interrupted:
        raise RunFolderError(f"Nothing to resume in '{out}': no interrupted run (run.json and backup/) there.")
    return None


def record(out, settings):
    """Writes the settings of the run starting in `out` to `out/run.json`."""
    atomic.write_json(os.path.join(out, "run.json"), settings)


def _read(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise RunFolderError(f"'{path}' cannot be read ({error}); move it away or pass --overwrite.") from None
