"""`multisensory data-service`: a tf.data service (`tf.data.experimental.service`) whose workers run input pipelines
for `train --data-service grpc://HOST:PORT`, so that reading and augmenting data is spread over machines.

    multisensory data-service --dispatcher --port 5050                       # one per cluster
    multisensory data-service --worker --dispatcher-address HOST:5050 --port 5051   # one per input machine
    multisensory data-service --local --port 5050                            # both in one process, to try it

Workers need the dataset's files at the same paths as the trainer (a shared file system), and read the pipeline the
trainer sends: dataset folders of TFRecord shards and the registered datasets qualify; shards read by a Python reader
(Parquet, npz, tables) cannot be sent to a worker.
"""

HELP = "serve tf.data input pipelines to `train --data-service` (dispatcher, worker, or both)"


def add_arguments(parser):
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--dispatcher", action="store_true", help="run the dispatcher")
    role.add_argument("--worker", action="store_true", help="run a worker of --dispatcher-address")
    role.add_argument("--local", action="store_true", help="a dispatcher and one worker in this process")
    parser.add_argument("--port", type=int, default=5050, help="this server's port (0: any free one)")
    parser.add_argument("--dispatcher-address", metavar="HOST:PORT", help="the dispatcher a worker registers with")
    parser.add_argument("--worker-port", type=int, default=0, help="--local: the worker's port (0: any free one)")


def validate(args):
    if args.worker and not args.dispatcher_address:
        raise ValueError("--worker needs --dispatcher-address HOST:PORT.")
    for flag, port in (("--port", args.port), ("--worker-port", args.worker_port)):
        if not 0 <= port <= 65535:
            raise ValueError(f"{flag} must be a port number from 0 to 65535, got {port}.")


def run(args):
    import tensorflow as tf

    service = tf.data.experimental.service
    servers = []
    if args.dispatcher or args.local:
        dispatcher = service.DispatchServer(service.DispatcherConfig(port=args.port))
        servers.append(dispatcher)
        address = dispatcher.target.split("://", 1)[1]
        print(f"dispatcher at {dispatcher.target}: train --data-service {dispatcher.target}", flush=True)
    if args.worker or args.local:
        target = args.dispatcher_address if args.worker else address
        port = args.port if args.worker else args.worker_port
        servers.append(service.WorkerServer(service.WorkerConfig(dispatcher_address=target, port=port)))
        print(f"worker registered with {target}", flush=True)
    servers[0].join()
