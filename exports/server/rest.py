"""TF-Serving's RESTful API as an ASGI app (Starlette):

    GET  /v1/models/{name}[/versions/{v}]             status (`GetModelStatusResponse` as JSON)
    GET  /v1/models/{name}[/versions/{v}]/metadata    signatures (`GetModelMetadataResponse` as JSON)
    POST /v1/models/{name}[/versions/{v}]:predict     `multisensory.exports.server.requests` formats

Errors are `{"error": "..."}` (`errors`): 400 for a bad request, 404 for an unknown model, version or signature (or
a version that is not served: the status says why), 408 for a body that does not arrive within the request timeout,
413 for a body over the size limit, 500 for a failure inside the model. A client that disconnects mid-request is
dropped; the server goes on.
"""

import asyncio
import re

import orjson
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import FAILURES, answer
from .requests import BadRequest, check_inputs, input_specs, json_inputs, json_reply, parse_json
from .responses import metadata_response, status_response
from .servables import NotFound, no_labels

PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?:/labels/(?P<label>[^/:]+))?"
                  r"(?P<tail>/metadata|:[a-zA-Z]+)?")


class TooLarge(Exception):
    pass


async def read_body(request, limit, timeout):
    """The request body, refused when it exceeds `limit` bytes or takes longer than `timeout` seconds."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise TooLarge(f"The request body of {int(length)} bytes exceeds the limit of {limit} bytes.")
    chunks, total = [], 0

    async def receive():
        nonlocal total
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"The request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)

    await asyncio.wait_for(receive(), timeout)
    return b"".join(chunks)


def as_json(message):
    """A proto as TF-Serving's REST API writes it (field names as in the proto, fields at their default too)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def error(status, message):
    return JSONResponse({"error": message}, status_code=status)


def rest_app(servables, batcher, max_body_bytes=64 << 20, request_timeout_s=30.0):
    """The Starlette app serving `servables` (a `Servables`) through `batcher` (a `Batcher`)."""

    async def models(request):
        match = PATH.fullmatch(request.path_params["rest"])
        if match is None:
            return error(404, f"Malformed request: {request.method} {request.url.path}")
        name, version, label, tail = match.group("name", "version", "label", "tail")
        try:
            if label is not None:
                raise no_labels(name)
            if version is not None and not version.isdigit():
                raise BadRequest(f"Version '{version}' is not a positive integer.")
            if request.method == "GET" and tail is None:
                return JSONResponse(as_json(status_response(servables.status(name, version))))
            if request.method == "GET" and tail == "/metadata":
                return JSONResponse(as_json(metadata_response(name, servables.get(name, version))))
            if request.method == "POST" and tail == ":predict":
                return await predict(request, name, version)
            if request.method == "POST" and tail in (":classify", ":regress"):
                raise NotFound(f"{tail[1:]} takes tf.Example inputs; these models serve :predict.")
            return error(404, f"Malformed request: {request.method} {request.url.path}")
        except FAILURES as e:
            status, _, message = answer(e)
            return error(status, message)

    async def predict(request, name, version):
        try:
            body = await read_body(request, max_body_bytes, request_timeout_s)
        except TooLarge as e:
            return error(413, str(e))
        except asyncio.TimeoutError:
            return error(408, f"The request body did not arrive within {request_timeout_s:g} s.")
        except ClientDisconnect:
            return Response(status_code=499)  # nobody reads it
        body = parse_json(body)
        if not isinstance(body, dict) or not isinstance(body.get("signature_name", ""), str):
            raise BadRequest("The predict body must be a JSON object whose signature_name, if given, is a string.")
        served = servables.get(name, version)
        signature_name, function, _ = served.signature(body.get("signature_name"))
        specs = input_specs(function)
        inputs, columnar = json_inputs(body, specs)
        outputs = await batcher.run((name, served.number, signature_name), function, check_inputs(inputs, specs))
        return Response(orjson.dumps(json_reply(outputs, columnar)), media_type="application/json")

    return Starlette(routes=[Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])])
