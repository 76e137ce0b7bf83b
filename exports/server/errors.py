"""How the server answers a request that fails, over REST and gRPC alike (TF-Serving's codes).

| failure | REST | gRPC |
|---|---|---|
| `NotFound`: an unknown model, version or signature, or a version not served | 404 | NOT_FOUND |
| `BadRequest`: a request the server refuses | 400 | INVALID_ARGUMENT |
| `tf.errors.InvalidArgumentError` inside the model (e.g. values it rejects) | 400 | INVALID_ARGUMENT |
| any other `tf.errors.OpError` inside the model | 500 | INTERNAL |

Errors only a transport has (a body over the size limit, a body that does not arrive in time) stay with it.
"""

import grpc
import tensorflow as tf

from .requests import BadRequest, op_error_message
from .servables import NotFound

_ANSWERS = ((NotFound, 404, grpc.StatusCode.NOT_FOUND), (BadRequest, 400, grpc.StatusCode.INVALID_ARGUMENT),
            (tf.errors.InvalidArgumentError, 400, grpc.StatusCode.INVALID_ARGUMENT),
            (tf.errors.OpError, 500, grpc.StatusCode.INTERNAL))
FAILURES = tuple(kind for kind, _, _ in _ANSWERS)  # what `answer` takes


def answer(error):
    """(HTTP status, gRPC status code, message) of a failure in `FAILURES` (see the module docstring)."""
    status, code = next((status, code) for kind, status, code in _ANSWERS if isinstance(error, kind))
    return status, code, op_error_message(error) if isinstance(error, tf.errors.OpError) else str(error)
