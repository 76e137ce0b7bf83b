"""`multisensory serve`: exports served with TF-Serving's REST and gRPC APIs (`multisensory.exports.server`)."""

HELP = "serve exports with TF-Serving's REST and gRPC APIs"


def add_arguments(parser):
    parser.add_argument("--zoo", required=True, help="a preset root, a model's base path or a models.config")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501, help="REST port (TF-Serving's default 8501)")
    parser.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (TF-Serving's default 8500)")
    parser.add_argument("--no-batching", action="store_true", help="run every request on its own")
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0,
                        help="the longest a request waits to be batched with others")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="how often new versions are looked for")
    parser.add_argument("--max-body-mb", type=float, default=64.0, help="the largest request accepted")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds a request body may take to arrive")
    parser.add_argument("--intra-op-threads", type=int, default=1,
                        help="threads one TensorFlow op may use (TF-Serving's --tensorflow_intra_op_parallelism; 0: "
                             "TensorFlow's choice, the cores). 1 is measured faster for the zoo's exports")
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="ops run at once (TF-Serving's --tensorflow_inter_op_parallelism; 0: the cores)")


def run(args):
    import asyncio

    import tensorflow as tf

    from multisensory.exports.server import BatchingOptions, ServerOptions, serve

    if args.max_batch_size < 1 or args.batch_timeout_ms < 0 or args.poll_seconds <= 0 or args.max_body_mb <= 0:
        raise ValueError("--max-batch-size must be >= 1, --batch-timeout-ms >= 0, --poll-seconds and --max-body-mb "
                         "> 0.")
    if args.intra_op_threads < 0 or args.inter_op_threads < 0:
        raise ValueError("--intra-op-threads and --inter-op-threads must be >= 0 (0: TensorFlow's choice).")
    for flag, port in (("--port", args.port), ("--grpc-port", args.grpc_port)):
        if not 0 <= port <= 65535:
            raise ValueError(f"{flag} must be a port number from 0 to 65535, got {port}.")
        _check_free(args.host, port, flag)
    try:  # settings of the process's TensorFlow runtime, which take only before it runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    except RuntimeError:
        raise ValueError("TensorFlow has run in this process already, so its threads are set: start the server in a "
                         "process of its own (`multisensory serve ...`).") from None
    options = ServerOptions(host=args.host, port=args.port, grpc_port=args.grpc_port, poll_seconds=args.poll_seconds,
                            max_body_bytes=int(args.max_body_mb * (1 << 20)), request_timeout_s=args.request_timeout,
                            batching=BatchingOptions(not args.no_batching, args.batch_timeout_ms,
                                                     args.max_batch_size))
    asyncio.run(serve(args.zoo, options))


def _check_free(host, port, flag):
    """Refuses a port another server listens on (TF-Serving refuses to start then), before anything starts."""
    import errno
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a listener still refuses it; TIME_WAIT not
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"{flag} {host}:{port} is in use (another server?); pass another "
                                                f"{flag}") from None
            raise
