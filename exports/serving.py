"""SavedModel export in TF-Serving layout, with inputs and outputs named.

`export_saved_model(model, base_dir)` writes `<base_dir>/<model_name>/<version>/` (TF-Serving's layout: a folder
per model, an integer folder per version, the next free integer by default) holding a SavedModel whose
`serving_default` signature takes one tensor per modality, named after the modality, and returns named outputs:
`logits`, `probabilities` and `class_id` for classification; `prediction` for regression.
"""

import os
import re

import keras
import tensorflow as tf

from multisensory.training import atomic
from multisensory.zoo.fusion_model import check_finite


def serving_outputs(model, prediction):
    """The named outputs of a serving signature for a model's prediction."""
    if model.task.type == "classification":
        return {"logits": prediction, "probabilities": tf.nn.softmax(prediction, axis=-1),
                "class_id": tf.argmax(prediction, axis=-1, output_type=tf.int32)}
    return {"prediction": prediction}


def input_signature(model):
    """One `tf.TensorSpec` per modality, named after it, with a free batch dimension."""
    return [tf.TensorSpec((None,) + tuple(m.shape), m.dtype, name=m.name) for m in model.modalities]


def next_version(model_dir):
    """The next integer version folder in `model_dir` (1 when there is none)."""
    versions = [int(d) for d in os.listdir(model_dir) if re.fullmatch(r"\d+", d)] if os.path.isdir(model_dir) else []
    return max(versions, default=0) + 1


def export_saved_model(model, base_dir, model_name=None, version=None):
    """Writes a SavedModel of a zoo model to `<base_dir>/<model_name>/<version>/` and returns that path.

    Args:
        model: a built `FusionModel`.
        base_dir: str. TF-Serving's model base path.
        model_name: str. Folder name of the model (letters, digits, '.', '_', '-'; one folder, inside `base_dir`);
            defaults to `model.name`.
        version: int >= 1. Version folder (TF-Serving serves positive integer versions only); defaults to the next
            free integer.
    """
    model_name = model_name or model.name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model_name) or ".." in model_name:
        raise ValueError(f"Model name {model_name!r} must be one folder name of letters, digits, '.', '_' and '-' "
                         f"(the export stays inside {base_dir!r}).")
    if version is not None and (int(version) != version or int(version) < 1):
        raise ValueError(f"Version {version!r} must be a positive integer: TF-Serving ignores other folders.")
    model_dir = os.path.join(base_dir, model_name)
    version = next_version(model_dir) if version is None else int(version)
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"Export version '{path}' exists already; pick another version.")
    names = model.modality_names

    def serve(*tensors):
        inputs = check_finite(dict(zip(names, tensors)), model.modalities)
        return serving_outputs(model, model(inputs, training=False))

    archive = keras.export.ExportArchive()  # tracks the variables the endpoint uses: training-only parts stay out
    archive.add_endpoint("serving_default", serve, input_signature=input_signature(model))
    os.makedirs(model_dir, exist_ok=True)
    with atomic.destination(path) as temporary:  # TF-Serving never sees a half-written version
        archive.write_out(temporary, verbose=False)
    return path
