"""The pretrained zoo: presets written by `publish`, listed by `list_presets`, loaded by `load_pretrained`.

A root (a local folder or any `tf.io.gfile` URI; default `$MULTISENSORY_ZOO`) holds one folder per preset, which is
also TF-Serving's base path of that model, and a `models.config` for TF-Serving's `--model_config_file`:

    <root>/models.config
    <root>/<preset>/<version>/saved_model.pb, variables/, assets.extra/tf_serving_warmup_requests
                              model.keras       the trainable model (`keras.saving.load_model`, safe mode)
                              manifest.json     what it is and the SHA-256 of every other file

The SavedModel takes what a user has (`multisensory.exports.serving`); the `.keras` model takes the features its
`preprocess` makes from that, keeps the scaling inside it, and is ready for `fit` (its compile settings are saved).
`load_pretrained` reads every file of the version, checks its SHA-256 against the manifest (a changed, missing or
added file is refused, naming it) and loads the `.keras` bytes it checked, never a file read twice.
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
import zipfile

import keras
import tensorflow as tf

from multisensory.training import atomic

from .serving import check_name, export_saved_model, next_version, version_numbers

ZOO_ENV = "MULTISENSORY_ZOO"
MANIFEST = "manifest.json"
MODEL_FILE = "model.keras"
MODELS_CONFIG = "models.config"
FORMAT = 1


class PresetError(ValueError):
    """A preset that cannot be used: unknown, incomplete, or whose files fail their checksums."""


def _join(*parts):
    return "/".join(p.rstrip("/") for p in parts[:-1]) + "/" + parts[-1] if "://" in parts[0] else os.path.join(*parts)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def resolve_root(root=None):
    """`root`, else `$MULTISENSORY_ZOO`; a clear error when neither is set."""
    root = root or os.environ.get(ZOO_ENV)
    if not root:
        raise PresetError(f"No preset root given: pass root= (or --root), or set ${ZOO_ENV} to a folder written by "
                          "`multisensory publish` (`make zoo` writes pretrained/).")
    return root


def _versions(folder):
    return [v for v in version_numbers(folder) if tf.io.gfile.exists(_join(folder, str(v), MANIFEST))]


def list_presets(root=None):
    """{preset: [versions]} of the presets under a root (folders with at least one version holding a manifest)."""
    root = resolve_root(root)
    if not tf.io.gfile.isdir(root):
        raise PresetError(f"Preset root '{root}' is not a folder.")
    presets = {name.rstrip("/"): _versions(_join(root, name.rstrip("/"))) for name in tf.io.gfile.listdir(root)}
    return {name: versions for name, versions in sorted(presets.items()) if versions}


def _version_folder(preset, root, version):
    presets = list_presets(root)
    if preset not in presets:
        raise PresetError(f"Unknown preset '{preset}' under '{root}'. Presets: "
                          f"{', '.join(presets) or 'none (publish one with `multisensory publish`)'}.")
    if version is None:
        version = presets[preset][-1]
    elif int(version) not in presets[preset]:
        raise PresetError(f"Preset '{preset}' has no version {version}; its versions are {presets[preset]}.")
    return _join(root, preset, str(int(version)))


def _files(folder, prefix=""):
    """Relative paths of every file under a folder, sorted."""
    found = []
    for entry in sorted(tf.io.gfile.listdir(folder)):
        entry = entry.rstrip("/")
        path = _join(folder, entry)
        found += _files(path, f"{prefix}{entry}/") if tf.io.gfile.isdir(path) else [prefix + entry]
    return found


def read_manifest(preset, root=None, version=None):
    """The manifest of a preset's version (the latest by default), unchecked."""
    return manifest_of(_version_folder(preset, resolve_root(root), version))


def manifest_of(folder):
    """The manifest in a version folder, unchecked."""
    try:
        with tf.io.gfile.GFile(_join(folder, MANIFEST), "rb") as f:
            manifest = json.loads(f.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PresetError(f"'{_join(folder, MANIFEST)}' is not a readable manifest ({error}).") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise PresetError(f"'{_join(folder, MANIFEST)}' has no 'files' checksums; it was not written by `publish`.")
    return manifest


def verify(preset, root=None, version=None):
    """(manifest, {relative path: bytes}) of a preset's version after `verify_folder`."""
    return verify_folder(_version_folder(preset, resolve_root(root), version), f"Preset '{preset}'")


def verify_folder(folder, label=None):
    """(manifest, {relative path: bytes}) of a version folder after checking every file's SHA-256.

    Raises:
        PresetError: naming each file that changed, is missing or is not in the manifest.
    """
    manifest = manifest_of(folder)
    present = [f for f in _files(folder) if f != MANIFEST]
    contents, problems = {}, []
    for name in present:
        if name not in manifest["files"]:
            problems.append(f"'{name}' is not in the manifest")
            continue
        with tf.io.gfile.GFile(_join(folder, name), "rb") as f:
            contents[name] = f.read()
        if sha256(contents[name]) != manifest["files"][name]:
            problems.append(f"'{name}' does not match its SHA-256 (changed since it was published)")
    problems += [f"'{name}' is missing" for name in manifest["files"] if name not in present]
    if problems:
        raise PresetError(f"{label or 'Preset version'} ({folder}) is refused: {'; '.join(problems)}.")
    return manifest, contents


# what reading a damaged .keras archive or weights file raises: a cut or missing file, bad JSON, h5py (RuntimeError on
# corrupt bytes), zip and Keras errors (also `training.checkpoints`' backups)
UNREADABLE = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, zipfile.BadZipFile)


FILE_KEYS = ("vocabulary", "idf_weights", "vocabulary_path", "filepath", "path")  # layer arguments naming a file


def external_files(path):
    """The file names a `.keras` archive's layers would read from outside it (a lookup layer's vocabulary given as a
    path), found in its `config.json`: a preset's model must hold everything it reads."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in FILE_KEYS and isinstance(item, str) and item:
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(config)
    return found


def load_keras_file(path, shown=None):
    """`keras.saving.load_model(path, safe_mode=True)`; a truncated, corrupt or foreign archive is a ValueError that
    names `shown` (default `path`: the file a user gave, where `path` is a temporary copy of it)."""
    shown = shown or path
    if not zipfile.is_zipfile(path):
        raise ValueError(f"'{shown}' is not a readable .keras archive (truncated, or another format).")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except UNREADABLE as error:
        raise ValueError(f"'{shown}' cannot be loaded as a zoo model (corrupt, or not written by the zoo): "
                         f"{type(error).__name__}: {str(error).replace(path, shown)[:300]}") from error


def load_pretrained(preset, root=None, version=None):
    """The `.keras` model of a preset, after `verify`, loaded with `safe_mode=True` and ready for `fit` or `predict`.

    Args:
        preset: str. A preset name (`list_presets(root)`).
        root: str. The preset root (a folder or a `tf.io.gfile` URI); default `$MULTISENSORY_ZOO`.
        version: int. Default the latest.

    The manifest is attached as `model.preset`.
    """
    folder = _version_folder(preset, resolve_root(root), version)
    manifest, contents = verify_folder(folder, f"Preset '{preset}'")
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, MODEL_FILE)
        with open(path, "wb") as f:
            f.write(contents[MODEL_FILE])
        try:
            outside = external_files(path)
        except (KeyError, ValueError, zipfile.BadZipFile) as error:
            raise PresetError(f"Preset '{preset}' ({folder}): {MODEL_FILE} has no readable config.json: {error}") \
                from None
        if outside:
            raise PresetError(f"Preset '{preset}' ({folder}) is refused: its model reads file(s) outside the preset "
                              f"({', '.join(map(repr, outside))}); a preset's model must hold what it reads.")
        model = load_keras_file(path, shown=_join(folder, MODEL_FILE))
    model.preset = manifest
    model.zoo_name = manifest.get("model")  # a fine-tuned model publishes under the same zoo name
    return model


def publish(model, name, root, manifest=None, version=None, warmup=None):
    """Writes a preset version: the SavedModel (with its warmup record), the `.keras` model and the manifest.

    Args:
        model: a built `FusionModel`.
        name: str. The preset's name (one folder name).
        root: str. A local folder or a `tf.io.gfile` URI.
        manifest: dict. What the preset is (the dataset, the command that trained it, test metrics, the robustness
            card...); `publish` adds the model, version, zoo config, parameter count, versions and checksums.
        version: int. Default the next free one.
        warmup: dict. The warmup request, as `export_saved_model`'s.

    Returns:
        The version folder.
    """
    check_name(name, root)  # before anything is created: '' would publish into the root itself
    folder = _join(root, name)
    tf.io.gfile.makedirs(folder)
    version = int(version) if version is not None else next_version(folder)
    with tempfile.TemporaryDirectory() as scratch:
        local = export_saved_model(model, scratch, model_name=name, version=version, warmup=warmup)
        model.save(os.path.join(local, MODEL_FILE))
        files = {f: _hash_file(os.path.join(local, f)) for f in _files(local)}
        record = {"format": FORMAT, "name": name, "version": version, **(manifest or {}),
                  "model": getattr(model, "zoo_name", None) or (manifest or {}).get("model"),
                  "class": type(model).__name__, "config": model.get_config(),
                  "parameters": int(model.count_params()),
                  "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                               "python": platform.python_version()},
                  "files": files}
        with open(os.path.join(local, MANIFEST), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
        path = _join(folder, str(version))
        if tf.io.gfile.exists(path):
            raise FileExistsError(f"Preset version '{path}' exists already; pick another version.")
        _copy_tree(local, path)
    write_models_config(root)
    return path


def _hash_file(path):
    with open(path, "rb") as f:
        return sha256(f.read())


def _copy_tree(local, destination):
    """Copies a finished local folder to its destination; a local one appears at once (a rename)."""
    if "://" not in destination:
        with atomic.destination(destination) as temporary:
            shutil.copytree(local, temporary)
        return
    for name in _files(local):  # a remote root: the manifest last, so a reader never sees it before the files
        if name != MANIFEST:
            tf.io.gfile.makedirs(os.path.dirname(_join(destination, name)))
            tf.io.gfile.copy(os.path.join(local, name), _join(destination, name))
    tf.io.gfile.copy(os.path.join(local, MANIFEST), _join(destination, MANIFEST))


def write_models_config(root):
    """`<root>/models.config`: TF-Serving's `--model_config_file` serving every preset under the root."""
    base = root if "://" in root else os.path.abspath(root)
    entries = "".join(f"  config {{\n    name: '{name}'\n    base_path: '{_join(base, name)}'\n"
                      f"    model_platform: 'tensorflow'\n    model_version_policy {{ all {{}} }}\n  }}\n"
                      for name in list_presets(root))
    text = f"model_config_list {{\n{entries}}}\n"
    if "://" in root:
        with tf.io.gfile.GFile(_join(root, MODELS_CONFIG), "w") as f:
            f.write(text)
    else:
        with atomic.destination(os.path.join(root, MODELS_CONFIG)) as temporary, open(temporary, "w") as f:
            f.write(text)
    return _join(root, MODELS_CONFIG)
