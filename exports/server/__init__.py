"""The network server (`multisensory serve`): TF-Serving's REST and gRPC APIs over the zoo's exports.

- `process`: `serve(source, ServerOptions)`, one process and one asyncio loop for both APIs, polling for versions;
- `servables`: the models and versions served, loaded when complete, with their status;
- `rest`, `grpc_service`: the two APIs; `requests`, `responses`, `errors`: what they take and answer;
- `batching`: server-side batching of concurrent requests.
"""

from .batching import BatchingOptions
from .process import ServerOptions, serve

__all__ = ["BatchingOptions", "ServerOptions", "serve"]
