"""`MultiWorkerMirroredStrategy`: two worker processes on 127.0.0.1 train like one process (Keras 3.15's `fit` needs
`multisensory.training.distribute`'s fix, and the unpatched failure is checked so the fix can go when Keras fixes it)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np

from multisensory.training import cli

# SGD (Liu et al.'s recipe): Adam's normalised steps turn rounding differences in near-zero gradients into whole
# steps of the learning rate, SGD keeps them at rounding size.
TRAIN = ["train", "--model", "additive_fusion", "--dataset", "synthetic_av", "--config", "width=8", "--config",
         "hidden=[8]", "--config", "recipe=liu_higgs", "--dataset-option", "num_examples=128", "--epochs", "2",
         "--batch-size", "32"]


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(argv_or_script, tmp_path, timeout=240):
    ports = _ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            command = ([sys.executable, "-m", "multisensory.training.cli", *argv_or_script]
                       if isinstance(argv_or_script, list) else [sys.executable, "-c", argv_or_script])
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True, cwd=tmp_path))
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in processes], outputs


def test_two_workers_train_like_one_process(tmp_path):
    codes, outputs = _run_workers(TRAIN + ["--strategy", "multiworker", "--out", str(tmp_path / "multi")], tmp_path)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert cli.main(TRAIN + ["--out", str(tmp_path / "single")]) == 0
    multi = keras.saving.load_model(tmp_path / "multi" / "model.keras", safe_mode=True).get_weights()
    single = keras.saving.load_model(tmp_path / "single" / "model.keras", safe_mode=True).get_weights()
    diff = max(float(np.abs(a - b).max()) for a, b in zip(multi, single))
    assert diff < 1e-4, diff
    report = json.loads((tmp_path / "multi" / "metrics.json").read_text())
    assert report["settings"]["strategy"] == "multiworker" and report["settings"]["replicas"] == 2


def test_keras_multi_worker_fit_still_needs_the_fix(tmp_path):
    """Fails once Keras fixes its trainer (keras-team/keras#20585, #20329): then remove the fix."""
    script = textwrap.dedent("""
        import tensorflow as tf, keras
        from multisensory import zoo
        from multisensory.datasets.synthetic_av import generate
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        x, y = generate(64, seed=0)
        with strategy.scope():
            model = zoo.create("additive_fusion", "synthetic_av", width=8, hidden=(8,))
            model.compile()
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0)
    """)
    codes, outputs = _run_workers(script, tmp_path, timeout=120)
    assert codes != [0, 0] and any("Attempt to convert a value" in o for o in outputs), outputs[0][-2000:]
