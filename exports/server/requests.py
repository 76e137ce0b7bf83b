"""Predict requests as TF-Serving takes them: JSON bodies (row and columnar formats) and `PredictRequest` protos,
checked against a signature's inputs before anything runs.

REST (TF-Serving's RESTful API): `{"signature_name": ..., "instances": [...]}` (row format: one entry per example,
an object {input: value} per example, or the bare value when the signature has one input) or `{"signature_name":
..., "inputs": {input: batched value}}` (columnar). Binary values are `{"b64": "<base64>"}`, decoded for string
inputs (a numeric input refuses them). Replies are `{"predictions": [...]}` (row) or `{"outputs": {...}}` (columnar),
a single output unwrapped, as TF-Serving's.

Every problem is a `BadRequest` naming the input: a missing or unexpected input, a value that is not of the input's
dtype, a ragged batch, a shape or batch size that does not fit.
"""

import base64
import binascii
import json
import math

import numpy as np
import orjson
import tensorflow as tf


class BadRequest(ValueError):
    """A request the server refuses (HTTP 400, gRPC INVALID_ARGUMENT)."""


def input_specs(function):
    """{input name: `tf.TensorSpec`} of a signature."""
    return dict(function.structured_input_signature[1])


def _decode_b64(value, name, spec):
    """`value` with every {"b64": ...} replaced by its bytes."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise BadRequest(f"Input '{name}': an object value must be {{\"b64\": \"<base64>\"}}, got keys "
                             f"{sorted(value)}.")
        if spec.dtype != tf.string:
            raise BadRequest(f"Input '{name}' is {spec.dtype.name}; {{\"b64\": ...}} values are for string inputs.")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise BadRequest(f"Input '{name}': the \"b64\" value is not valid base64.") from None
    if isinstance(value, list):
        return [_decode_b64(v, name, spec) for v in value]
    return value


def to_array(value, name, spec):
    """A batched JSON value as an array of the spec's dtype and shape. Only string inputs are walked for {"b64": ...}
    values; a numeric input is walked only when NumPy refuses it, to name a stray "b64" object."""
    if spec.dtype == tf.string:
        value, dtype = _decode_b64(value, name, spec), object
    else:
        dtype = spec.dtype.as_numpy_dtype
    try:
        array = np.asarray(value, dtype=dtype)
    except (ValueError, TypeError) as error:
        if dtype is not object:
            _decode_b64(value, name, spec)
        reason = ("ragged values: every example must have the same shape (pad, and send a mask where the model "
                  "takes one)" if "inhomogeneous" in str(error) or "sequence" in str(error)
                  else f"not {spec.dtype.name} values ({error})")
        raise BadRequest(f"Input '{name}': {reason}.") from None
    return check_array(array, name, spec)


def check_array(array, name, spec):
    """`array` if its rank and fixed dimensions fit the spec's."""
    expected = [-1 if d is None else d for d in spec.shape]
    if array.ndim != len(expected) or any(e not in (-1, a) for a, e in zip(array.shape, expected)):
        raise BadRequest(f"Input '{name}': expected shape {tuple(expected)} (-1: any size), got {array.shape}.")
    return array


def check_names(names, specs):
    """Refuses input names that are not exactly the signature's, naming the missing and unexpected ones."""
    missing, extra = sorted(set(specs) - set(names)), sorted(set(names) - set(specs))
    if missing or extra:
        parts = ([f"missing input(s) {missing}"] if missing else []) + (
            [f"unexpected input(s) {extra}"] if extra else [])
        raise BadRequest(f"{' and '.join(parts).capitalize()}; the signature takes {sorted(specs)}.")


def check_inputs(inputs, specs):
    """`inputs` {name: array} if they are exactly the signature's, with one batch size."""
    check_names(inputs, specs)
    sizes = {name: a.shape[0] for name, a in inputs.items()}
    if len(set(sizes.values())) > 1:
        raise BadRequest(f"Inputs have different batch sizes: {sizes}.")
    if not next(iter(sizes.values()), 1):
        raise BadRequest("No example to predict: the batch is empty.")
    return inputs


def parse_json(body):
    """The JSON object of a request body: parsed by orjson (6x the standard library's speed on numeric arrays), or,
    for what orjson refuses (NaN and Infinity literals, integers beyond 64 bits, malformed text), by `json`, which
    names the error."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise BadRequest(f"Malformed JSON in the request body: {error}.") from None
    if not isinstance(request, dict):
        raise BadRequest("The request body must be a JSON object with \"instances\" or \"inputs\".")
    return request


def json_inputs(request, specs):
    """({input: array}, columnar) of a predict body (see the module docstring)."""
    formats = [key for key in ("instances", "inputs") if key in request]
    if len(formats) != 1:
        raise BadRequest("A predict body holds exactly one of \"instances\" (row format) or \"inputs\" (columnar "
                         f"format); got keys {sorted(request)}.")
    unknown = sorted(set(request) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise BadRequest(f"Unknown key(s) {unknown} in the predict body; it takes signature_name and instances or "
                         "inputs.")
    names = sorted(specs)
    if formats[0] == "inputs":
        value = request["inputs"]
        columns = value if isinstance(value, dict) and not set(value) <= {"b64"} else (
            {names[0]: value} if len(names) == 1 else None)
        if columns is None:
            raise BadRequest(f"\"inputs\" must be an object {{input: values}} with the signature's inputs {names}.")
        check_names(columns, specs)
        return {k: to_array(v, k, specs[k]) for k, v in columns.items()}, True
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest("\"instances\" must be a non-empty list, one entry per example.")
    if all(isinstance(i, dict) and not set(i) <= {"b64"} for i in instances):
        keys = {frozenset(i) for i in instances}
        if len(keys) > 1:
            raise BadRequest("Every instance must name the same inputs; got "
                             f"{sorted(sorted(k) for k in keys)}.")
        check_names(instances[0], specs)
        return {k: to_array([i[k] for i in instances], k, specs[k]) for k in instances[0]}, False
    if len(names) != 1:
        raise BadRequest(f"The signature takes {names}: each instance must be an object {{input: value}}.")
    return {names[0]: to_array(instances, names[0], specs[names[0]])}, False


def _jsonable(array):
    """An output array as JSON values; bytes (string tensors) as {"b64": ...}."""
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(array).tolist()
    return array.tolist()


def json_reply(outputs, columnar):
    """The reply body of named output arrays, in the request's format."""
    if columnar:
        columns = {k: _jsonable(v) for k, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    rows = {k: _jsonable(v) for k, v in outputs.items()}
    return {"predictions": [{k: rows[k][i] for k in rows} for i in range(len(next(iter(rows.values()))))]}


def _check_sent_values(name, proto):
    """Refuses a TensorProto whose shape holds more values than it sends: TensorFlow would fill them by repeating
    the last one, so a request of a few bytes could make the server allocate and compute on gigabytes."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise BadRequest(f"Input '{name}': its shape {dims} has a negative dimension.")
    declared = math.prod(dims)
    if proto.tensor_content:
        itemsize = tf.as_dtype(proto.dtype).size if proto.dtype else 1
        sent = len(proto.tensor_content) // max(itemsize, 1)
    else:
        sent = sum(len(getattr(proto, field.name)) for field in proto.DESCRIPTOR.fields if field.name.endswith("_val"))
    if sent != declared:
        raise BadRequest(f"Input '{name}': its shape {dims} holds {declared} values and the request sends {sent}; "
                         "send every value.")


def proto_inputs(request, specs):
    """{input: array} of a `PredictRequest`'s TensorProtos."""
    check_names(request.inputs, specs)
    inputs = {}
    for name, proto in request.inputs.items():
        _check_sent_values(name, proto)
        try:
            array = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise BadRequest(f"Input '{name}': not a readable tensor ({error}).") from None
        if tf.as_dtype(proto.dtype) != specs[name].dtype:
            raise BadRequest(f"Input '{name}': expected {specs[name].dtype.name}, got {tf.as_dtype(proto.dtype).name}.")
        inputs[name] = check_array(array, name, specs[name])
    return inputs


def op_error_message(error):
    """A TensorFlow error's own message on one line, without the traceback of the graph's creation."""
    lines = error.message.splitlines()
    last_frame = max((i for i, line in enumerate(lines) if line.lstrip().startswith('File "')), default=-1)
    noise = ("[[{{node", "Graph execution error", "Detected at node", "<stack traces unavailable>")
    text = " ".join(line.strip() for line in lines[last_frame + 1:]
                    if line.strip() and not line.strip().startswith(noise))
    return text or error.message
