"""Latency and throughput of `multisensory serve` against direct SavedModel calls. Prints one JSON object.

Measured in one run, same machine: a preset is served twice, with server-side batching on and off (each a
`multisensory serve` process on 127.0.0.1), and called
- directly: the SavedModel's `serving_default` in this process (`direct`);
- over REST and gRPC by `--clients` concurrent client threads (and by one client, sequentially), at batch 1 and 32.
Each entry gives p50/p99 latency (ms), requests/s and examples/s. Ratios:
- `batching_throughput_ratio`: REST examples/s of the concurrent batch-1 clients, batching on over off (target >= 3);
- `grpc_batching_throughput_ratio`: the same over gRPC;
- `rest_p50_overhead_ms_b1`: with batching off, one client's REST batch-1 p50 minus the direct call's (target < 2),
  the two (and gRPC) timed in turns (`direct.b1_in_turns`, `times_in_turns` of benchmarks/recurrent.py): blocks of
  `TURN_CALLS` after `TURN_WARMUP` untimed calls, so that a drift in the machine's speed reaches all three.
Clients and servers share the machine's cores, as a small deployment would. The servers and the direct calls run
TensorFlow with the same `--intra-op-threads` (`multisensory serve`'s default 1; 0: TensorFlow's choice). The preset
is `--zoo ROOT --model NAME`, or a fresh, untrained one (`--fresh`): `mmlatch` (d = 100) on MOSEI's shapes
(300/74/35 features, inputs of 50 steps), or `additive_fusion` on `synthetic_av`, a model whose call costs less than
a request's HTTP and JSON handling.

Usage: python benchmarks/serving.py [--clients 8] [--requests 60] [--fresh mmlatch|additive_fusion]
       [--zoo ROOT --model NAME] [--intra-op-threads 1]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from multisensory import datasets, exports, zoo  # noqa: E402
from recurrent import times_in_turns  # noqa: E402  (benchmarks/recurrent.py)


FRESH = {"mmlatch": ("mosei", {"units": 100}), "additive_fusion": ("synthetic_av", {})}
STEPS = 50  # the length of inputs whose sequence axis is open
WARMUP = 5  # untimed requests per client before each load
TURN_WARMUP, TURN_CALLS = 3, 6  # one client's calls per turn, untimed then timed (`times_in_turns`)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root, batching, intra_op_threads):
    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "multisensory.training.commands", "serve", "--zoo", root, "--port", str(port),
               "--grpc-port", str(grpc_port), "--poll-seconds", "60", "--intra-op-threads", str(intra_op_threads)]
    command += [] if batching else ["--no-batching"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port, grpc_port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start within 120 s")


def summary(latencies, seconds, batch):
    latencies = np.array(latencies) * 1000
    return {"p50_ms": round(float(np.percentile(latencies, 50)), 3),
            "p99_ms": round(float(np.percentile(latencies, 99)), 3),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "examples_per_s": round(batch * len(latencies) / seconds, 1)}


def load(send, clients, requests, batch):
    """Latencies of `requests` calls per client, `clients` at once, timed after `WARMUP` calls of each (the server's
    first calls at each batch size the load forms are slower)."""
    started = []
    barrier = threading.Barrier(clients, action=lambda: started.append(time.perf_counter()))

    def client(_):
        send_one = send()
        for _ in range(WARMUP):
            send_one()
        barrier.wait()
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            send_one()
            times.append(time.perf_counter() - start)
        return times

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, range(clients)) for t in times]
    return summary(latencies, time.perf_counter() - started[0], batch)


def rest_sender(port, name, body):
    def make():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()  # no Nagle delay between the headers and the body, as urllib3 (requests) sets
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send():
            connection.request("POST", f"/v1/models/{name}:predict", body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"REST answered {response.status}")
        return send
    return make


def grpc_sender(port, request):
    def make():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return lambda: stub.Predict(request, timeout=60)
    return make


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=60, help="requests per client and condition")
    parser.add_argument("--fresh", choices=sorted(FRESH), default="mmlatch",
                        help="the model of a fresh, untrained preset, when --zoo is not given")
    parser.add_argument("--zoo", help="a preset root")
    parser.add_argument("--model", help="the preset's name under --zoo")
    parser.add_argument("--intra-op-threads", type=int, default=1,
                        help="TensorFlow's intra-op threads, in the servers and for the direct calls")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)

    root, name = args.zoo, args.model
    if root is None:
        dataset, config = FRESH[args.fresh]
        root, name = tempfile.mkdtemp(), f"{dataset}-{args.fresh}"
        exports.publish(zoo.create(args.fresh, datasets.info(dataset), **config), name, root,
                        manifest={"model": args.fresh})
    folder = os.path.join(root, name, str(exports.list_presets(root)[name][-1]))
    signature = tf.saved_model.load(folder).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    rng = np.random.default_rng(0)
    inputs = {b: {k: rng.uniform(0, 1, (b,) + tuple(d or STEPS for d in s.shape[1:])).astype("float32")
                  for k, s in specs.items()} for b in (1, 32)}

    def direct(batch):
        tensors = {k: tf.constant(v) for k, v in inputs[batch].items()}
        return lambda: lambda: signature(**tensors)

    results = {"direct": {f"b{batch}": load(direct(batch), 1, args.requests * 4, batch) for batch in inputs}}

    for batching in (True, False):
        process, port, grpc_port = start(root, batching, args.intra_op_threads)
        key = "batching_on" if batching else "batching_off"
        results[key] = {}
        try:
            for batch, x in inputs.items():
                body = json.dumps({"inputs": {k: v.tolist() for k, v in x.items()}})
                request = predict_pb2.PredictRequest()
                request.model_spec.name = name
                for k, v in x.items():
                    request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
                senders = {"rest": rest_sender(port, name, body), "grpc": grpc_sender(grpc_port, request)}
                for protocol, sender in senders.items():
                    results[key][f"{protocol}_b{batch}_{args.clients}_clients"] = load(
                        sender, args.clients, args.requests, batch)
                if batching or batch != 1:
                    for protocol, sender in senders.items():
                        results[key][f"{protocol}_b{batch}_1_client"] = load(sender, 1, args.requests, batch)
                else:  # the overhead over a direct call: the three in turns
                    makers = {"direct": direct(1), **senders}
                    times = times_in_turns([make() for make in makers.values()], -(-args.requests // TURN_CALLS),
                                           TURN_WARMUP, TURN_CALLS)
                    turns = {name: summary(t, sum(t), batch) for name, t in zip(makers, times)}
                    results["direct"]["b1_in_turns"] = turns.pop("direct")
                    results[key].update({f"{protocol}_b1_1_client": s for protocol, s in turns.items()})
        finally:
            process.terminate()
            process.wait(30)

    clients = f"b1_{args.clients}_clients"
    on, off = results["batching_on"], results["batching_off"]
    report = {
        "benchmark": "serving", "model": name, "clients": args.clients, "requests_per_client": args.requests,
        "intra_op_threads": args.intra_op_threads,
        "batching_throughput_ratio": round(on[f"rest_{clients}"]["examples_per_s"]
                                           / off[f"rest_{clients}"]["examples_per_s"], 2),
        "grpc_batching_throughput_ratio": round(on[f"grpc_{clients}"]["examples_per_s"]
                                                / off[f"grpc_{clients}"]["examples_per_s"], 2),
        "rest_p50_overhead_ms_b1": round(off["rest_b1_1_client"]["p50_ms"]
                                         - results["direct"]["b1_in_turns"]["p50_ms"], 3),
        "grpc_p50_overhead_ms_b1": round(off["grpc_b1_1_client"]["p50_ms"]
                                         - results["direct"]["b1_in_turns"]["p50_ms"], 3),
        **results,
        "peak_rss_mb_client": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "tensorflow": tf.__version__},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
