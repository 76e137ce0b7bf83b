"""`multisensory serve`: TF-Serving's REST and gRPC APIs over a preset root, bad requests, faults, new versions.

One server process for the module, on 127.0.0.1 and free ports, stopped at the end; every request has a timeout.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from multisensory import datasets, exports, zoo
from multisensory.exports.server import requests as serving_requests
from multisensory.exports.server.errors import FAILURES, answer
from multisensory.exports.server.servables import NotFound

TIMEOUT = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("presets"))
    model = zoo.create("additive_fusion", datasets.info("synthetic_av"), width=8)
    model.compile()
    exports.publish(model, "demo", root, manifest={"model": "additive_fusion"})
    broken = exports.publish(model, "broken", root, manifest={"model": "additive_fusion"})
    with open(os.path.join(broken, "saved_model.pb"), "ab") as f:
        f.write(b"\0")
    port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "multisensory.training.commands", "serve", "--zoo", root, "--port", str(port),
         "--grpc-port", str(grpc_port), "--poll-seconds", "0.3", "--max-body-mb", "1", "--request-timeout", "1",
         "--batch-timeout-ms", "5", "--intra-op-threads", "1", "--inter-op-threads", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the server did not start within 60 s")
    yield {"root": root, "model": model, "port": port, "grpc_port": grpc_port}
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def call(server, method, path, body=None, raw=None):
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=TIMEOUT)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def examples(n, seed=0):
    x, _ = next(iter(datasets.load("synthetic_av", "test", batch_size=n, num_examples=n, seed=seed)))
    return {k: v.numpy() for k, v in x.items()}


def test_rest_both_formats_and_grpc_give_model_predict(server):
    x = examples(3)
    expected = server["model"].predict(x, verbose=0)
    status, reply = call(server, "POST", "/v1/models/demo:predict", {"inputs": {k: v.tolist() for k, v in x.items()}})
    assert status == 200
    np.testing.assert_allclose(reply["outputs"]["logits"], expected, rtol=1e-5, atol=1e-5)
    instances = [{k: v[i].tolist() for k, v in x.items()} for i in range(3)]
    status, reply = call(server, "POST", "/v1/models/demo/versions/1:predict", {"instances": instances})
    assert status == 200
    np.testing.assert_allclose([p["logits"] for p in reply["predictions"]], expected, rtol=1e-5, atol=1e-5)
    assert [p["class_id"] for p in reply["predictions"]] == expected.argmax(-1).tolist()

    with grpc.insecure_channel(f"127.0.0.1:{server['grpc_port']}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "demo"
        request.model_spec.signature_name = "serving_default"
        for k, v in x.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        response = stub.Predict(request, timeout=TIMEOUT)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["logits"]), expected, rtol=1e-5, atol=1e-5)
        assert response.model_spec.version.value == 1

        embed = predict_pb2.PredictRequest()
        embed.CopyFrom(request)
        embed.model_spec.signature_name = "embed"
        fused = tf.make_ndarray(stub.Predict(embed, timeout=TIMEOUT).outputs["fused"])
        np.testing.assert_allclose(fused, server["model"](x, return_outputs=True)["fused"], rtol=1e-5, atol=1e-5)

        metadata = stub.GetModelMetadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=request.model_spec, metadata_field=["signature_def"]), timeout=TIMEOUT)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata["signature_def"].Unpack(signatures)
        assert {"serving_default", "embed"} <= set(signatures.signature_def)
        assert set(signatures.signature_def["serving_default"].inputs) == {"image", "audio"}

        bad = predict_pb2.PredictRequest()
        bad.CopyFrom(request)
        del bad.inputs["audio"]
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(bad, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "Missing input(s) ['audio']" in \
            error.value.details()
        bad.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(bad, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    status, reply = call(server, "GET", "/v1/models/demo/metadata")
    assert status == 200 and "serving_default" in reply["metadata"]["signature_def"]["signature_def"]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server):
    import concurrent.futures

    x = examples(8, seed=1)
    expected = server["model"].predict(x, verbose=0)

    def one(i):
        return call(server, "POST", "/v1/models/demo:predict",
                    {"instances": [{k: v[i].tolist() for k, v in x.items()}]})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(8)))
    for i, (status, reply) in enumerate(replies):
        assert status == 200
        np.testing.assert_allclose(reply["predictions"][0]["logits"], expected[i], rtol=1e-5, atol=1e-5)


def bad_requests():
    x = examples(2)
    good = {k: v.tolist() for k, v in x.items()}
    nan = {**good, "image": np.where(np.arange(x["image"].size).reshape(x["image"].shape) == 0, np.nan,
                                     x["image"]).tolist()}
    return [
        ("unknown model", "/v1/models/nope:predict", {"inputs": good}, 404, "Servable not found for request: "
                                                                            "Latest(nope)"),
        ("unknown version", "/v1/models/demo/versions/9:predict", {"inputs": good}, 404, "the versions of 'demo' "
                                                                                         "are [1]"),
        ("missing modality", "/v1/models/demo:predict", {"inputs": {"image": good["image"]}}, 400,
         "Missing input(s) ['audio']"),
        ("extra modality", "/v1/models/demo:predict", {"inputs": {**good, "text": [1]}}, 400,
         "Unexpected input(s) ['text']"),
        ("wrong shape", "/v1/models/demo:predict", {"inputs": {**good, "audio": [[1.0, 2.0]] * 2}}, 400,
         "Input 'audio': expected shape (-1, 20, 32)"),
        ("wrong dtype", "/v1/models/demo:predict", {"inputs": {**good, "image": [["pixel"]]}}, 400,
         "Input 'image': not float32 values"),
        ("ragged", "/v1/models/demo:predict", {"instances": [{"image": good["image"][0], "audio": [[0.0]]},
                                                             {"image": good["image"][1], "audio": [[0.0, 1.0]]}]},
         400, "Input 'audio': ragged values"),
        ("b64 on a float input", "/v1/models/demo:predict", {"inputs": {**good, "image": {"b64": "AAAA"}}}, 400,
         "Input 'image' is float32; {\"b64\": ...} values are for string inputs"),
        ("NaN", "/v1/models/demo:predict", {"inputs": nan}, 400, "Modality 'image': the input holds NaN"),
        ("both formats", "/v1/models/demo:predict", {"inputs": good, "instances": []}, 400, "exactly one of"),
        ("unknown signature", "/v1/models/demo:predict", {"signature_name": "nope", "inputs": good}, 404,
         "\"nope\" not found in signature def"),
        ("signature as a list", "/v1/models/demo:predict", {"signature_name": ["a"], "inputs": good}, 400,
         "signature_name, if given, is a string"),
        ("a version label", "/v1/models/demo/labels/stable:predict", {"inputs": good}, 404,
         "Model 'demo' has no version labels"),
    ]


@pytest.mark.parametrize("case, path, body, status, message", bad_requests(), ids=[c[0] for c in bad_requests()])
def test_a_bad_request_gets_its_error_and_the_next_good_one_succeeds(server, case, path, body, status, message):
    got, reply = call(server, "POST", path, body)
    assert got == status and message in reply["error"], reply
    good = {k: v.tolist() for k, v in examples(1).items()}
    assert call(server, "POST", "/v1/models/demo:predict", {"inputs": good})[0] == 200


def test_malformed_json_oversized_slow_and_vanishing_clients(server):
    status, reply = call(server, "POST", "/v1/models/demo:predict", raw=b'{"inputs": [1, ')
    assert status == 400 and reply["error"].startswith("Malformed JSON")
    status, reply = call(server, "POST", "/v1/models/demo:predict", raw=b"[" * 5000 + b"]" * 5000)  # too deep
    assert status == 400 and reply["error"].startswith("Malformed JSON")
    status, reply = call(server, "POST", "/v1/models/demo:predict", raw=b"[" + b"0," * (1 << 20) + b"0]")
    assert status == 413 and "exceeds the limit of 1048576 bytes" in reply["error"]

    slow = socket.create_connection(("127.0.0.1", server["port"]), timeout=TIMEOUT)  # announces 100 bytes, sends 5
    slow.sendall(b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp")
    response = http.client.HTTPResponse(slow)
    response.begin()
    reply = json.loads(response.read())
    slow.close()
    assert response.status == 408 and "did not arrive within 1 s" in reply["error"]

    gone = socket.create_connection(("127.0.0.1", server["port"]), timeout=TIMEOUT)
    gone.sendall(b"POST /v1/models/demo:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\"")
    gone.close()  # mid-request
    good = {k: v.tolist() for k, v in examples(1).items()}
    assert call(server, "POST", "/v1/models/demo:predict", {"inputs": good})[0] == 200


def test_a_preset_failing_its_checksums_is_not_served_and_the_status_says_why(server):
    status, reply = call(server, "GET", "/v1/models/broken")
    assert status == 200
    (version,) = reply["model_version_status"]
    assert version["state"] == "END" and version["status"]["error_code"] == "DATA_LOSS"
    assert "'saved_model.pb' does not match its SHA-256" in version["status"]["error_message"]
    status, reply = call(server, "POST", "/v1/models/broken:predict", {"inputs": {}})
    assert status == 404 and "no version is available" in reply["error"] and "SHA-256" in reply["error"]


def test_a_new_version_is_served_without_restart(server):
    source = os.path.join(server["root"], "demo", "1")
    shutil.copytree(source, os.path.join(server["root"], "demo", ".incoming"))
    os.rename(os.path.join(server["root"], "demo", ".incoming"), os.path.join(server["root"], "demo", "2"))
    deadline = time.time() + 30
    while time.time() < deadline:
        status, reply = call(server, "GET", "/v1/models/demo")
        if [v["version"] for v in reply["model_version_status"]] == ["1", "2"]:
            break
        time.sleep(0.2)
    assert [(v["version"], v["state"]) for v in reply["model_version_status"]] == [("1", "AVAILABLE"),
                                                                                 ("2", "AVAILABLE")]
    good = {k: v.tolist() for k, v in examples(1).items()}
    assert call(server, "POST", "/v1/models/demo/versions/2:predict", {"inputs": good})[0] == 200


def test_a_version_replays_its_warmup_records_and_one_that_fails_is_not_served(tmp_path):
    from multisensory.exports import serving
    from multisensory.exports.server.servables import load_version

    model = zoo.create("additive_fusion", datasets.info("synthetic_av"), width=8)
    path = exports.export_saved_model(model, str(tmp_path), model_name="m")
    assert load_version(1, path).state == "AVAILABLE"
    wrong = {"picture": np.zeros((1, 4), "float32")}  # not the signature's inputs
    with tf.io.TFRecordWriter(os.path.join(path, exports.WARMUP_FILE)) as writer:
        for record in serving.warmup_records("m", wrong):
            writer.write(record)
    version = load_version(1, path)
    assert version.state == "END" and "warmup request 0" in version.error and "picture" in version.error


def test_a_queue_whose_time_is_up_keeps_filling_while_the_call_threads_are_busy():
    import asyncio

    from multisensory.exports.server.batching import Batcher, BatchingOptions

    sizes = []

    def slow(x):
        time.sleep(0.2)
        sizes.append(len(x))
        return {"y": tf.constant(x) * 2}

    async def requests():
        batcher = Batcher(BatchingOptions(timeout_ms=1, max_batch_size=32), threads=1)
        calls = [asyncio.ensure_future(batcher.run("k", slow, {"x": np.zeros((1, 2), "float32")}))]
        for i in range(1, 6):  # each arrives after the last one's 1 ms window, while the first call runs
            await asyncio.sleep(0.01)
            calls.append(asyncio.ensure_future(batcher.run("k", slow, {"x": np.full((1, 2), i, "float32")})))
        outputs = await asyncio.wait_for(asyncio.gather(*calls), TIMEOUT)
        batcher.close()
        return outputs

    outputs = asyncio.run(requests())
    assert sizes == [1, 5]
    for i, output in enumerate(outputs):
        np.testing.assert_array_equal(output["y"], np.full((1, 2), 2 * i))


def test_serve_refuses_bad_thread_counts_and_a_process_where_tensorflow_runs(capsys):
    from multisensory.training import commands

    assert commands.main(["serve", "--zoo", "nowhere", "--intra-op-threads", "-1"]) == 2
    assert "--intra-op-threads and --inter-op-threads must be >= 0" in capsys.readouterr().err
    tf.constant(1.0) + 1.0  # TensorFlow runs here: its threads are set for this process
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    assert commands.main(["serve", "--zoo", "nowhere", "--intra-op-threads", str(threads + 3)]) == 2
    assert "start the server in a process of its own" in capsys.readouterr().err
    assert tf.config.threading.get_intra_op_parallelism_threads() == threads


def test_b64_values_decode_for_string_inputs():
    spec = tf.TensorSpec((None,), tf.string, name="wav")
    array = serving_requests.to_array([{"b64": base64.b64encode(b"RIFF").decode()}], "wav", spec)
    assert array.tolist() == [b"RIFF"]
    with pytest.raises(serving_requests.BadRequest, match="not valid base64"):
        serving_requests.to_array([{"b64": "%%%"}], "wav", spec)
    assert serving_requests.json_reply({"wav": array}, columnar=True) == {"outputs": [{"b64": "UklGRg=="}]}


def test_a_source_is_a_preset_root_a_base_path_or_a_models_config(tmp_path):
    from multisensory.exports.server import servables

    model = zoo.create("late_fusion", datasets.info("synthetic_av"), width=4)
    root = str(tmp_path / "root")
    exports.publish(model, "late", root, manifest={"model": "late_fusion"})
    base = os.path.join(root, "late")
    assert servables.base_paths(root) == {"late": base}
    assert servables.base_paths(base) == {"late": base}
    assert servables.base_paths(os.path.join(root, "models.config")) == {"late": os.path.abspath(base)}
    served = servables.Servables(os.path.join(root, "models.config"))
    assert served.start() == [("late", 1, "AVAILABLE")]  # just written: looked at twice, unchanged
    assert served.get("late").signature(None)[0] == "serving_default"
    with pytest.raises(FileNotFoundError, match="pass a preset root, a model's base path or a models.config"):
        servables.base_paths(str(tmp_path / "nothing"))


def test_rest_and_grpc_answer_each_failure_with_tf_serving_codes():
    traced = ('Graph execution error:\n  File "x.py", line 1, in f\nModality \'image\': the input holds NaN\n'
              '[[{{node x}}]]')
    cases = [(NotFound("Model 'x' is not served."), 404, grpc.StatusCode.NOT_FOUND, "Model 'x' is not served."),
             (serving_requests.BadRequest("Missing input(s)."), 400, grpc.StatusCode.INVALID_ARGUMENT,
              "Missing input(s)."),
             (tf.errors.InvalidArgumentError(None, None, traced), 400, grpc.StatusCode.INVALID_ARGUMENT,
              "Modality 'image': the input holds NaN"),
             (tf.errors.ResourceExhaustedError(None, None, "out of memory"), 500, grpc.StatusCode.INTERNAL,
              "out of memory")]
    for error, status, code, message in cases:
        assert isinstance(error, FAILURES)
        assert answer(error) == (status, code, message)
    assert not isinstance(ValueError("a bug"), FAILURES)  # not a request's failure: the frameworks' own 500


def test_grpc_refuses_labels_like_rest_and_requests_that_expand_past_what_they_send(server):
    with grpc.insecure_channel(f"127.0.0.1:{server['grpc_port']}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "demo"
        request.model_spec.version_label = "stable"
        for k, v in examples(1).items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Model 'demo' has no version labels" in error.value.details()

        request.model_spec.ClearField("version_label")
        huge = tf.make_tensor_proto(np.zeros((1, 16, 16, 1), "float32"))
        huge.tensor_shape.dim[0].size = 100_000  # 100,000 images declared, one value sent: 82 bytes
        huge.ClearField("tensor_content")
        huge.float_val.append(0.5)
        request.inputs["image"].CopyFrom(huge)
        assert request.inputs["image"].ByteSize() < 100
        start = time.perf_counter()
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and time.perf_counter() - start < 2
        assert "holds 25600000 values and the request sends 1" in error.value.details()


def test_a_second_server_on_a_grpc_port_in_use_is_refused_and_bad_options_are_one_line(server, tmp_path, capsys):
    done = subprocess.run([sys.executable, "-m", "multisensory.training.commands", "serve", "--zoo", server["root"],
                           "--port", str(free_port()), "--grpc-port", str(server["grpc_port"])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"--grpc-port 127.0.0.1:{server['grpc_port']} is in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    from multisensory.exports.server import servables
    from multisensory.training import commands

    garbage = tmp_path / "models.config"
    garbage.write_text("model_config_list { this is not a config")
    with pytest.raises(ValueError, match="is not a TF-Serving models.config"):
        servables.base_paths(str(garbage))
    assert commands.main(["serve", "--zoo", server["root"], "--port", "99999"]) == 2
    assert "--port must be a port number from 0 to 65535" in capsys.readouterr().err


def test_a_version_copied_in_file_by_file_loads_once_complete_and_a_failed_one_is_retried(tmp_path):
    from multisensory.exports.server import servables

    model = zoo.create("late_fusion", datasets.info("synthetic_av"), width=4)
    root = str(tmp_path / "root")
    source = exports.publish(model, "late", root, manifest={"model": "late_fusion"})
    served = servables.Servables(root)
    assert served.start() == [("late", 1, "AVAILABLE")]
    target = os.path.join(root, "late", "2")
    os.makedirs(target)
    shutil.copy(os.path.join(source, "saved_model.pb"), target)  # a copy under way: the rest comes later
    assert served.poll() == []  # just written, not looked at before: wait
    assert served.poll() == [("late", 2, "END")]  # unchanged over a poll: tried, and it is incomplete
    assert served.poll() == []  # the same files are not tried again
    for name in os.listdir(source):
        if name != "saved_model.pb":
            (shutil.copytree if os.path.isdir(os.path.join(source, name)) else shutil.copy)(
                os.path.join(source, name), os.path.join(target, name))
    os.utime(target)
    for name in os.listdir(target):  # the copy's files are new
        os.utime(os.path.join(target, name))
    assert served.poll() == []  # changed since the last poll: wait
    assert served.poll() == [("late", 2, "AVAILABLE")]
    assert served.get("late").number == 2
