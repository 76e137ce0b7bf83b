"""SavedModel export in TF-Serving layout, taking what a user has, with inputs and outputs named.

`export_saved_model(model, base_dir)` writes `<base_dir>/<model_name>/<version>/` (TF-Serving's layout: a folder
per model, an integer folder per version, the next free integer by default) holding a SavedModel with these
signatures, each taking one tensor per modality named after it, with a free batch dimension:

- `serving_default`: what a user has (a modality with a `raw` spec, e.g. `av_mnist`'s 8 kHz recording of any
  length, is converted inside: `FusionModel.preprocess`; scaling such as HIGGS' standardisation and pixels / 255 is
  inside the model) -> `logits`, `probabilities` and `class_id` for classification, `prediction` for regression;
- `serving_masked` (when a modality takes recordings of different lengths in one batch): the same with a
  `<modality>_mask` (batch, length), 1 on each row's values and 0 on its right padding. TF-Serving feeds every
  input a signature names, so the mask is optional by being a second signature;
- `embed`: -> `fused`, the fused representation Z;
- `masks` (models with MMLatch feedback): -> one mask per modality, as `outputs["masks"]`.

`assets.extra/tf_serving_warmup_requests` holds one `PredictionLog` of a real `serving_default` request (written
with the `tensorflow-serving-api` protos), which TF-Serving replays before it reports the version ready.
NaN and infinite inputs are refused by every signature with an error naming the modality. The export serves: it
holds no custom gradient functions (`experimental_custom_gradients=False`: the recurrent models' hand-written
backward passes would more than double the time to save and to load it), so a loaded recurrent model cannot be
differentiated; the `.keras` file is the model to differentiate or train further.
"""

import contextlib
import os
import re

import keras
import numpy as np
import tensorflow as tf

from multisensory.datasets.raw_inputs import serving_spec
from multisensory.training import atomic
from multisensory.zoo import precision, recurrent
from multisensory.zoo.fusion_model import check_finite

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def serving_outputs(model, prediction):
    """The named outputs of a serving signature for a model's prediction."""
    if model.task.type == "classification":
        return {"logits": prediction, "probabilities": tf.nn.softmax(prediction, axis=-1),
                "class_id": tf.argmax(prediction, axis=-1, output_type=tf.int32)}
    return {"prediction": prediction}


def input_signature(model, masks=False):
    """The `tf.TensorSpec`s a served model takes: one per modality, named after it (`raw_inputs.serving_spec`),
    then with `masks` a `<modality>_mask` (int32, the modality's shape) for each modality that takes one."""
    specs = [serving_spec(m) for m in model.modalities]
    return [spec for spec, _ in specs] + ([tf.TensorSpec(spec.shape, tf.int32, name=f"{spec.name}_mask")
                                           for spec, masked in specs if masked] if masks else [])


def example_request(model, batch_size=1):
    """A request `serving_default` takes: {input name: zeros of its shape}; a variable length gets the length the
    model's raw spec pads to (a whole recording), or one step (a sequence modality of open length, e.g. `mosei`'s
    info without its files)."""
    inputs = {}
    for m, spec in zip(model.modalities, input_signature(model)):
        length = (dict(m.raw).get("samples") if m.raw is not None else None) or 1
        shape = [batch_size] + [length if d is None else d for d in spec.shape[1:]]
        inputs[spec.name] = np.zeros(shape, spec.dtype.as_numpy_dtype)
    return inputs


def warmup_records(model_name, inputs, signature="serving_default"):
    """Serialized `PredictionLog` records of one TF-Serving `PredictRequest` with `inputs` {name: array}."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    return [log.SerializeToString()]


def version_numbers(model_dir):
    """The integer version folders of a model's base path (a folder or a `tf.io.gfile` URI), sorted; [] when it
    does not exist."""
    if not tf.io.gfile.isdir(model_dir):
        return []
    return sorted(int(d.rstrip("/")) for d in tf.io.gfile.listdir(model_dir) if re.fullmatch(r"\d+/?", d))


def next_version(model_dir):
    """The next integer version folder in `model_dir` (1 when there is none)."""
    return max(version_numbers(model_dir), default=0) + 1


def _with_plain_variables(model):
    """The model, or where it was built under a `tf.distribute` strategy (its variables mirrored over replicas), a
    copy with the same configuration and weights in plain variables, made outside the strategy's scope (as `train`,
    `tune` and `publish` export): TensorFlow cannot save some functions that read distributed variables (`mmlatch`
    trained with `--strategy mirrored` failed to export), and a served model runs on one device anyway. The copy
    computes in the model's precision (`multisensory.zoo.precision`)."""
    if not any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues) for v in model.weights):
        return model
    with precision.unchecked(model.precision):
        copy = model.__class__.from_config(model.get_config())
        if not copy.built:
            copy.build()
    copy.set_weights(model.get_weights())
    return copy


def check_name(name, root):
    """Raises ValueError unless `name` is one folder name (letters, digits, '.', '_', '-'; not empty, not '..'), so
    what is written under `root` in its name stays inside `root`."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name:
        raise ValueError(f"Model name {name!r} must be one folder name of letters, digits, '.', '_' and '-' "
                         f"(what is written stays inside {root!r}).")


def export_saved_model(model, base_dir, model_name=None, version=None, warmup=None, xla=False):
    """Writes a SavedModel of a zoo model to `<base_dir>/<model_name>/<version>/` and returns that path.

    Args:
        model: a built `FusionModel`.
        base_dir: str. TF-Serving's model base path.
        model_name: str. Folder name of the model (letters, digits, '.', '_', '-'; one folder, inside `base_dir`);
            defaults to `model.name`.
        version: int >= 1. Version folder (TF-Serving serves positive integer versions only); defaults to the next
            free integer.
        warmup: dict or None. The request written as the warmup record ({input name: array}, what
            `serving_default` takes); default `example_request(model)`.
        xla: bool. Keep the recurrent loops XLA-compiled (`zoo.recurrent.compiled_loops`): faster at batch 1, but
            TF-Serving then needs `--xla_cpu_compilation_enabled`; the default export runs anywhere.
    """
    model_name = model_name or model.name
    model = _with_plain_variables(model)
    check_name(model_name, base_dir)
    if version is not None and (int(version) != version or int(version) < 1):
        raise ValueError(f"Version {version!r} must be a positive integer: TF-Serving ignores other folders.")
    model_dir = os.path.join(base_dir, model_name)
    version = next_version(model_dir) if version is None else int(version)
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"Export version '{path}' exists already; pick another version.")
    archive = keras.export.ExportArchive()  # tracks the variables the endpoints use: training-only parts stay out
    # `_endpoints` traces the model; the portable export keeps each LSTM's [K; R] for the fused kernel
    with recurrent.compiled_loops(xla), contextlib.nullcontext() if xla else recurrent.stacked_weights(model):
        for signature, specs, function in _endpoints(model):
            archive.add_endpoint(signature, function, input_signature=specs)
        os.makedirs(model_dir, exist_ok=True)
        with atomic.destination(path) as temporary:  # TF-Serving never sees a half-written version
            archive.write_out(temporary, options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
                              verbose=False)
            os.makedirs(os.path.join(temporary, "assets.extra"))
            with tf.io.TFRecordWriter(os.path.join(temporary, WARMUP_FILE)) as writer:
                for record in warmup_records(model_name, warmup or example_request(model)):
                    writer.write(record)
    return path


def _endpoints(model):
    """(signature name, input specs, function) of each signature of the module docstring. The model is traced once
    per input signature (`_traced`); the signatures pick their outputs from that trace (a concrete function: a
    `tf.function` called inside another function's graph would be traced again)."""
    plain = _traced(model, input_signature(model)).get_concrete_function()
    outputs = plain.structured_outputs

    def pick(traced, key):
        return lambda *tensors: traced(*tensors)[key]

    endpoints = [("serving_default", input_signature(model), pick(plain, "prediction"))]
    if any(masked for _, masked in map(serving_spec, model.modalities)):
        specs = input_signature(model, masks=True)
        masked = _traced(model, specs).get_concrete_function()
        endpoints.append(("serving_masked", specs, pick(masked, "prediction")))
    endpoints.append(("embed", input_signature(model), pick(plain, "embed")))
    if "masks" in outputs:
        endpoints.append(("masks", input_signature(model), pick(plain, "masks")))
    return endpoints


def _traced(model, specs):
    """A `tf.function` of what a user sends (`specs`) -> {"prediction": named outputs, "embed": {"fused"}, and for
    MMLatch "masks": {modality: mask}}, NaN and infinity refused (`check_finite`)."""
    names = [s.name for s in specs]

    @tf.function(input_signature=specs)
    def serve(*tensors):
        raw = check_finite(dict(zip(names, tensors)), model.modalities)
        outputs = model(model.preprocess(raw), training=False, return_outputs=True)
        result = {"prediction": serving_outputs(model, outputs["prediction"]), "embed": {"fused": outputs["fused"]}}
        if "masks" in outputs:
            result["masks"] = dict(outputs["masks"])
        # float32 out whatever the precision the model computes in (`multisensory.zoo.precision`)
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32) if t.dtype.is_floating else t, result)

    return serve
