"""TF-Serving's gRPC API: `tensorflow.serving.PredictionService` (`Predict`, `GetModelMetadata`) and
`tensorflow.serving.ModelService` (`GetModelStatus`), implemented on the `tensorflow-serving-api` stubs, so the
official client (`prediction_service_pb2_grpc.PredictionServiceStub`) works against it unchanged.

Errors use TF-Serving's status codes (`errors`): NOT_FOUND for an unknown model, version or signature (or a
version not served), INVALID_ARGUMENT for a bad request, INTERNAL for a failure inside the model. Other methods
answer UNIMPLEMENTED.
"""

import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from .errors import FAILURES, answer
from .requests import BadRequest, check_inputs, input_specs, proto_inputs
from .responses import metadata_response, status_response
from .servables import no_labels


def _version(spec):
    if spec.WhichOneof("version_choice") == "version_label":
        raise no_labels(spec.name)
    return spec.version.value if spec.HasField("version") else None


async def _answer(context, call):
    """`call()`'s reply, or the gRPC status of its failure (`errors.answer`)."""
    try:
        return await call()
    except FAILURES as e:
        _, code, message = answer(e)
        await context.abort(code, message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servables, batcher):
        self.servables, self.batcher = servables, batcher

    async def Predict(self, request, context):
        async def call():
            name = request.model_spec.name
            served = self.servables.get(name, _version(request.model_spec))
            signature_name, function, _ = served.signature(request.model_spec.signature_name)
            specs = input_specs(function)
            inputs = check_inputs(proto_inputs(request, specs), specs)
            outputs = await self.batcher.run((name, served.number, signature_name), function, inputs)
            unknown = sorted(set(request.output_filter) - set(outputs))
            if unknown:
                raise BadRequest(f"output_filter names unknown output(s) {unknown}; the outputs are {sorted(outputs)}.")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = served.number
            response.model_spec.signature_name = signature_name
            for key, value in outputs.items():
                if not request.output_filter or key in request.output_filter:
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        return await _answer(context, call)

    async def GetModelMetadata(self, request, context):
        async def call():
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise BadRequest(f"Metadata field(s) {fields} are not supported; request ['signature_def'].")
            return metadata_response(request.model_spec.name,
                                     self.servables.get(request.model_spec.name, _version(request.model_spec)))

        return await _answer(context, call)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, servables):
        self.servables = servables

    async def GetModelStatus(self, request, context):
        async def call():
            return status_response(self.servables.status(request.model_spec.name, _version(request.model_spec)))

        return await _answer(context, call)
