"""What a server serves: models by name, each a TF-Serving base path of integer version folders.

`Servables(source)` takes what `multisensory serve --zoo` names:
- a `models.config` file (TF-Serving's `--model_config_file` text format): its names and base paths;
- a base path (a folder holding integer version folders): one model, named after the folder;
- a preset root written by `publish` (a folder of base paths): every preset, by its name.

`poll()` loads version folders that appeared since the last poll (TF-Serving's file-system polling; the server
calls it every `--poll-seconds`) and forgets those that disappeared. A version is loaded once it is complete: its
files (names, sizes, modification times) unchanged since the previous poll, or none modified in the last
`SETTLE_SECONDS` (what a server finds at start); a folder still being copied in waits. A version that failed (END)
is tried again when its files change. A version folder holding a `manifest.json` is a
preset and is loaded only after every file passes its SHA-256 (`presets.verify_folder`); one that fails stays listed
with state `END` and the reason, and is not served. A loaded version replays its warmup records before it is served,
as TF-Serving's, so that the first requests do not pay for the functions' first run.
"""

import dataclasses
import os
import threading
import time

import tensorflow as tf

from ..presets import MANIFEST, PresetError, verify_folder
from ..serving import WARMUP_FILE, version_numbers


UNKNOWN, DATA_LOSS = 2, 15  # tensorflow.error.Code


class NotFound(LookupError):
    """A model, version or signature the server does not serve (HTTP 404, gRPC NOT_FOUND)."""


@dataclasses.dataclass
class Version:
    """One version folder: AVAILABLE with its signatures, or END with the reason it is not served."""

    number: int
    path: str
    state: str
    error: str = ""
    code: int = 0  # tensorflow.error.Code of the status: OK, DATA_LOSS (checksums), UNKNOWN (another failure)
    signatures: dict = dataclasses.field(default_factory=dict)
    signature_defs: dict = dataclasses.field(default_factory=dict)
    module: object = None  # keeps the loaded SavedModel (and so its variables) alive
    files: tuple = ()  # the folder's state it was loaded from (`folder_state`)

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.signatures:
            raise NotFound(f"Serving signature name: \"{name}\" not found in signature def; the model's signatures "
                           f"are {sorted(self.signatures)}.")
        return name, self.signatures[name], self.signature_defs[name]


def read_models_config(path):
    """{name: base path} of a TF-Serving `models.config` (text format)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise ValueError(f"'{path}' is not a TF-Serving models.config (text format: model_config_list {{ config {{ "
                         f"name: ... base_path: ... }} }}): {error}") from None
    return {c.name: c.base_path for c in config.model_config_list.config}


def no_labels(name):
    """The answer, over REST and gRPC alike, to a request that addresses a version by label."""
    return NotFound(f"Model '{name}' has no version labels (the server reads none from models.config); address a "
                    "version by its number, or leave it out for the latest.")


def base_paths(source):
    """{model name: base path} of a source (see the module docstring)."""
    if not tf.io.gfile.exists(source):
        raise FileNotFoundError(f"'{source}' does not exist: pass a preset root, a model's base path or a "
                                "models.config.")
    if not tf.io.gfile.isdir(source):
        return read_models_config(source)
    if version_numbers(source):
        return {os.path.basename(os.path.normpath(source)): source}
    entries = [e.rstrip("/") for e in tf.io.gfile.listdir(source)]
    return {e: os.path.join(source, e) for e in sorted(entries) if tf.io.gfile.isdir(os.path.join(source, e))}


def _signature_defs(path):
    """{signature name: SignatureDef proto} of a SavedModel folder."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    return dict(saved.meta_graphs[0].signature_def)


def _warm_up(path, signatures, limit=1000):
    """Replays a version's warmup records (`assets.extra/tf_serving_warmup_requests`, `PredictionLog`s), as TF-Serving
    does before it reports a version AVAILABLE (at most its 1000); a request that fails fails the load."""
    from tensorflow_serving.apis import prediction_log_pb2

    file = os.path.join(path, WARMUP_FILE)
    if not tf.io.gfile.exists(file):
        return
    for i, record in enumerate(tf.data.TFRecordDataset(file).take(limit)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            continue
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        try:
            signatures[name](**{k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except (KeyError, TypeError, ValueError, tf.errors.OpError) as error:
            raise ValueError(f"warmup request {i} ({WARMUP_FILE}) failed: {type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''}") from None


def load_version(number, path):
    """A `Version` of a folder: a preset's checksums are checked first; any failure gives state END."""
    try:
        if tf.io.gfile.exists(os.path.join(path, MANIFEST)):
            verify_folder(path, f"Version {number}")
        module = tf.saved_model.load(path)
        signatures = dict(module.signatures)
        _warm_up(path, signatures)
        return Version(number, path, "AVAILABLE", signatures=signatures, module=module,
                       signature_defs={k: v for k, v in _signature_defs(path).items() if k in signatures})
    except (PresetError, OSError, ValueError, tf.errors.OpError) as error:
        return Version(number, path, "END", error=f"{type(error).__name__}: {error}".splitlines()[0],
                       code=DATA_LOSS if isinstance(error, PresetError) else UNKNOWN)


SETTLE_SECONDS = 2.0


def folder_state(path):
    """(relative path, size, modification time) of every file under a version folder, sorted."""
    entries = []
    for directory, _, names in tf.io.gfile.walk(path):
        for name in names:
            file = os.path.join(directory, name)
            try:
                status = tf.io.gfile.stat(file)
            except tf.errors.NotFoundError:  # removed between the listing and the stat: still changing
                continue
            entries.append((os.path.relpath(file, path), status.length, status.mtime_nsec))
    return tuple(sorted(entries))


def _settled(state, previous):
    """Whether a version folder in `state` is complete enough to load (see the module docstring)."""
    if not state:
        return False
    newest = max(mtime for _, _, mtime in state) / 1e9
    return state == previous or time.time() - newest > SETTLE_SECONDS


class Servables:
    """Models by name with their versions (see the module docstring); thread-safe."""

    def __init__(self, source):
        self.source = source
        self.models = {}  # name -> {number: Version}
        self._seen = {}  # (name, number) -> the folder's state at the last poll, for versions not AVAILABLE
        self._lock = threading.Lock()

    def poll(self):
        """Loads new (or changed failed) version folders once complete, forgets removed ones; returns
        [(name, number, state)] of what changed."""
        changes = []
        for name, base in base_paths(self.source).items():
            present = set(version_numbers(base))
            known = dict(self.models.get(name, {}))
            for number in sorted(present):
                if number in known and known[number].state == "AVAILABLE":
                    continue
                path = os.path.join(base, str(number))
                state, previous = folder_state(path), self._seen.get((name, number))
                self._seen[(name, number)] = state
                if number in known and state == known[number].files:
                    continue  # failed on these very files
                if not _settled(state, previous):
                    continue  # still being written: the next poll looks again
                known[number] = load_version(number, path)
                known[number].files = state
                changes.append((name, number, known[number].state))
            for number in set(known) - present:
                del known[number]
                self._seen.pop((name, number), None)
                changes.append((name, number, "REMOVED"))
            with self._lock:
                self.models[name] = known
        return changes

    def start(self, pause=0.5):
        """The first poll of a server: folders found unsettled (just written) are looked at again after `pause`
        seconds, so that a version published a moment ago is served from the start when it stays unchanged."""
        changes = self.poll()
        waiting = [key for key in self._seen if key[1] not in self.models.get(key[0], {})]
        if waiting:
            time.sleep(pause)
            changes += self.poll()
        return changes

    def status(self, name, version=None):
        """[Version] of a model (one, with `version`)."""
        versions = self._versions(name)
        if version is None:
            return [versions[n] for n in sorted(versions)]
        if int(version) not in versions:
            raise NotFound(f"Servable not found for request: Specific({name}, {version}); the versions of '{name}' "
                           f"are {sorted(versions)}.")
        return [versions[int(version)]]

    def get(self, name, version=None):
        """The AVAILABLE `Version` to serve: `version`, or the highest available."""
        versions = self._versions(name)
        if version is None:
            available = [n for n, v in versions.items() if v.state == "AVAILABLE"]
            if not available:
                reasons = "; ".join(f"version {n}: {v.error}" for n, v in sorted(versions.items()))
                raise NotFound(f"Servable not found for request: Latest({name}); no version is available "
                               f"({reasons or 'no version folder yet'}).")
            return versions[max(available)]
        chosen = self.status(name, version)[0]
        if chosen.state != "AVAILABLE":
            raise NotFound(f"Servable not found for request: Specific({name}, {version}): it is not served "
                           f"({chosen.error}).")
        return chosen

    def _versions(self, name):
        with self._lock:
            if name not in self.models:
                raise NotFound(f"Servable not found for request: Latest({name}); the models served are "
                               f"{sorted(self.models)}.")
            return dict(self.models[name])
