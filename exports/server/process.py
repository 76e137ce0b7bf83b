"""`multisensory serve`: a local server that speaks TF-Serving's REST and gRPC APIs over the zoo's exports.

One process, one asyncio loop: uvicorn serves the REST app (`rest`), `grpc.aio` the gRPC services
(`grpc_service`), both through one `Batcher`; a task polls the source for new versions every `poll_seconds`.
Both listen on 127.0.0.1 unless told otherwise. Client code written against it works unchanged against TF-Serving
(`tensorflow/serving` on the same folder).
"""

import asyncio
import dataclasses
import errno
import gc
import sys

import grpc
import uvicorn
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from .batching import Batcher, BatchingOptions
from .grpc_service import ModelService, PredictionService
from .rest import rest_app
from .servables import Servables


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """host: str. port: int (REST). grpc_port: int, or None for no gRPC. poll_seconds: float, how often the source
    is polled for new versions. max_body_bytes: int, the largest request accepted (REST body, gRPC message).
    request_timeout_s: float, how long a REST body may take to arrive. batching: `BatchingOptions`."""

    host: str = "127.0.0.1"
    port: int = 8501
    grpc_port: int = 8500
    poll_seconds: float = 2.0
    max_body_bytes: int = 64 << 20
    request_timeout_s: float = 30.0
    batching: BatchingOptions = BatchingOptions()


def _report(changes):
    for name, number, state in changes:
        print(f"model {name} version {number}: {state}", flush=True)


def _loaded(changes):
    """Reports what a poll changed. After a change, every object alive (TensorFlow's, the models') leaves the garbage
    collector's generations (`gc.freeze`): a full collection over them took about 100 ms, with every request
    waiting (the REST p99 of 8 concurrent clients: 115 ms before, 15-22 ms after)."""
    _report(changes)
    if changes:
        gc.freeze()


async def serve(source, options=ServerOptions()):
    """Serves `source` (see `multisensory.exports.server.servables`) until interrupted."""
    loop = asyncio.get_running_loop()
    servables = Servables(source)
    _loaded(await loop.run_in_executor(None, servables.start))
    batcher = Batcher(options.batching)
    app = rest_app(servables, batcher, options.max_body_bytes, options.request_timeout_s)
    rest = uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                                         access_log=False, lifespan="off"))
    grpc_server = None
    if options.grpc_port is not None:
        # no SO_REUSEPORT: a second server on a port in use is refused (as TF-Serving's), not run beside the first
        grpc_server = grpc.aio.server(options=[("grpc.max_receive_message_length", options.max_body_bytes),
                                               ("grpc.max_send_message_length", options.max_body_bytes),
                                               ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(servables, batcher), grpc_server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(servables), grpc_server)
        try:
            bound = grpc_server.add_insecure_port(f"{options.host}:{options.grpc_port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise OSError(errno.EADDRINUSE, f"gRPC port {options.host}:{options.grpc_port} cannot be bound (in use by "
                                            "another server?); pass another --grpc-port")
        await grpc_server.start()

    async def poll():
        while True:
            await asyncio.sleep(options.poll_seconds)
            try:
                _loaded(await loop.run_in_executor(None, servables.poll))
            except OSError as error:  # a source gone for a moment: keep serving what is loaded
                print(f"polling '{source}' failed: {error}", file=sys.stderr, flush=True)

    poller = asyncio.ensure_future(poll())
    print(f"REST on http://{options.host}:{options.port}/v1/models/<name>"
          + (f", gRPC on {options.host}:{options.grpc_port}" if grpc_server else "")
          + f", batching {'on' if options.batching.enabled else 'off'}", flush=True)
    try:
        await rest.serve()
    finally:
        poller.cancel()
        if grpc_server is not None:
            await grpc_server.stop(grace=1)
        batcher.close()
