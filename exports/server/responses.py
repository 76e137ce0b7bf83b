"""The status and metadata replies both APIs give, as TF-Serving's protos (the REST API sends their JSON)."""

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2


def status_response(versions):
    """`GetModelStatusResponse` of [servables.Version]: state, and the reason of a version not served."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for v in versions:
        status = response.model_version_status.add(version=v.number)
        status.state = get_model_status_pb2.ModelVersionStatus.State.Value(v.state)
        status.status.error_code = v.code
        status.status.error_message = v.error
    return response


def metadata_response(name, version):
    """`GetModelMetadataResponse` of a served version: its signature defs."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = version.number
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in version.signature_defs.items():
        signatures.signature_def[key].CopyFrom(signature)
    response.metadata["signature_def"].Pack(signatures)
    return response
