"""`MultiWorkerMirroredStrategy`: two worker processes on 127.0.0.1 train like one process. Keras 3.15's `fit` needs
`multisensory.training.distribute`'s fix; the unpatched failure is checked, so the fix can go once Keras fixes it."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np

from multisensory.training import commands

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


def _run_workers(argv_or_script, tmp_path, timeout=240, kill_after_exit_of=None, args=()):
    """Runs two workers (a script gets `args`); with `kill_after_exit_of=i`, the other is killed once worker i has
    exited."""
    ports = _ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            command = ([sys.executable, "-m", "multisensory.training.commands", *argv_or_script]
                       if isinstance(argv_or_script, list) else [sys.executable, "-c", argv_or_script, *args])
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True, cwd=tmp_path))
        if kill_after_exit_of is not None:
            processes[kill_after_exit_of].wait(timeout=timeout)
            time.sleep(3)  # the other worker's backup of the same epoch is written by now
            for p in processes:
                if p.poll() is None:
                    p.kill()
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
    assert commands.main(TRAIN + ["--out", str(tmp_path / "single")]) == 0
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


SCHEMES = ("mulmix", "lmf-synergy_mmd", "mmlatch-lstm_lstm", "resnet_cifar-mul")
SCHEME_SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {tests!r})
    import numpy as np
    import tensorflow as tf
    import keras
    from multisensory import zoo
    from multisensory.training import distribute
    from model_harness import model_cases

    strategy = distribute.strategy("multiworker")
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    for case_id, name, info, (features, labels), config in model_cases():
        if case_id not in {cases!r}:
            continue
        data = tf.data.Dataset.from_tensor_slices(({{k: v[:32] for k, v in features.items()}}, labels[:32])).batch(32)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = zoo.create(name, info, **config)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(data, epochs=1, verbose=0)
        np.savez(f"{{case_id}}-{{index}}.npz", *model.get_weights())
""").format(tests=os.path.dirname(os.path.abspath(__file__)), cases=SCHEMES)


def test_every_training_scheme_matches_one_device_on_two_workers(tmp_path):
    """One SGD step on a batch split over two workers gives the single-device weights (see test_distribute.py):
    the multiplicative loss, synergy's second optimiser and gathered statistics, MMLatch's two stages, synchronised
    batch normalisation."""
    import tensorflow as tf

    from multisensory import zoo
    from model_harness import model_cases

    codes, outputs = _run_workers(SCHEME_SCRIPT, tmp_path, timeout=400)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    for case_id, name, info, (features, labels), config in model_cases():
        if case_id not in SCHEMES:
            continue
        keras.utils.set_random_seed(0)
        model = zoo.create(name, info, **config)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        initial = model.get_weights()
        data = tf.data.Dataset.from_tensor_slices(({k: v[:32] for k, v in features.items()}, labels[:32])).batch(32)
        model.fit(data, epochs=1, verbose=0)
        single = model.get_weights()
        moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, single))
        for index in range(2):
            with np.load(tmp_path / f"{case_id}-{index}.npz") as saved:
                both = [saved[f"arr_{k}"] for k in range(len(saved.files))]
            diff = max(float(np.abs(a - b).max()) for a, b in zip(single, both))
            assert moved > 1e-3 and diff < 1e-3 * moved, (case_id, index, moved, diff)


def test_killed_workers_restarted_with_the_same_command_resume(tmp_path):
    """Worker 1 dies after its epoch-2 backup; worker 0 is then stuck in a collective and is killed too. The same
    command on both resumes at epoch 3 (each worker from its own `backup/worker-<i>/`)."""
    out = str(tmp_path / "run")
    dying = textwrap.dedent(f"""
        import json, os, keras
        from multisensory.training import runs

        class DieAfterSecondEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1 and json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
                    os._exit(3)

        runs.train("additive_fusion", "synthetic_av", {out!r}, epochs=6, batch_size=32, strategy="multiworker",
                   config={{"width": 8, "hidden": [8], "recipe": "liu_higgs"}}, dataset_options={{"num_examples": 128}},
                   callbacks=[DieAfterSecondEpoch()], verbose=2)
    """)
    codes, _ = _run_workers(dying, tmp_path, timeout=120, kill_after_exit_of=1)
    assert codes[1] == 3 and codes[0] != 0  # worker 0 was killed while waiting for worker 1
    resume = ["train", "--model", "additive_fusion", "--dataset", "synthetic_av", "--config", "width=8", "--config",
              "hidden=[8]", "--config", "recipe=liu_higgs", "--dataset-option", "num_examples=128", "--epochs", "6",
              "--batch-size", "32", "--strategy", "multiworker", "--out", out]
    codes, outputs = _run_workers(resume, tmp_path)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert "Epoch 3/6" in outputs[0] and "Epoch 1/6" not in outputs[0] and "Epoch 2/6" not in outputs[0]
    assert os.path.exists(os.path.join(out, "model.keras"))


SHARD_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from multisensory import datasets
    from multisensory.training import distribute

    strategy = distribute.strategy("multiworker")
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    for path in sys.argv[1:]:
        rows = []
        for x, _ in strategy.experimental_distribute_dataset(datasets.load(path, "train", batch_size=10, seed=0)):
            rows += [v.numpy().reshape(len(v), -1) for v in strategy.experimental_local_results(x["audio"])]
        np.save(f"{os.path.basename(path)}-{index}.npy", np.concatenate(rows))
""")


def test_two_workers_read_their_own_shards_and_every_example_once(tmp_path):
    """Four TFRecord shards: each worker reads two whole shards (by file); one shard, or Python-read shards: each
    worker keeps its share of the examples (by example, with a warning for too few shards). Either way the two
    workers together read every training example once per epoch, none twice."""
    from multisensory import datasets
    from multisensory.datasets import shards

    for name, count in (("four", 4), ("one", 1)):
        shards.write("synthetic_av", str(tmp_path / name), shards=count, num_examples=100)
    (tmp_path / "npz").mkdir()
    x, y = next(iter(datasets.load("synthetic_av", "train", batch_size=100, shuffle=False, num_examples=100)))
    for k in range(2):
        np.savez(tmp_path / "npz" / f"train-{k}.npz", label=y.numpy()[k * 50:(k + 1) * 50],
                 **{m: v.numpy()[k * 50:(k + 1) * 50] for m, v in x.items()})
    spec = json.loads((tmp_path / "one" / "dataset.json").read_text())
    spec["files"] = dict.fromkeys(("train", "validation", "test"), "train-*.npz")
    del spec["examples"]
    (tmp_path / "npz" / "dataset.json").write_text(json.dumps(spec))
    codes, outputs = _run_workers(SHARD_SCRIPT, tmp_path, timeout=120,
                                  args=[str(tmp_path / n) for n in ("four", "one", "npz")])
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outputs)
    source = x["audio"].numpy().reshape(100, -1)
    shard_of = {row.tobytes(): k // 25 for k, row in enumerate(source)}  # convert writes 25 consecutive per shard
    for name in ("four", "one", "npz"):
        read = [np.load(tmp_path / f"{name}-{index}.npy") for index in range(2)]
        keys = [[row.tobytes() for row in rows] for rows in read]
        assert sorted(keys[0] + keys[1]) == sorted(shard_of), name  # every example once, over both workers
        if name == "four":
            own = [sorted({shard_of[k] for k in worker}) for worker in keys]
            assert len(own[0]) == len(own[1]) == 2 and not set(own[0]) & set(own[1]), own
            assert all(len(worker) == 50 for worker in keys)  # whole shards
    assert "has 1 shard(s) for 2 workers" in outputs[0]
