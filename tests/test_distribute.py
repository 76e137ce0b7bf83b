"""Zoo models train under `tf.distribute.MirroredStrategy` exactly as on one device (two logical CPUs)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from multisensory import datasets, zoo
    from multisensory.datasets.synthetic_av import generate

    features, labels = generate(64, seed=0)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)

    def trained(name, strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = zoo.create(name, "synthetic_av", hidden=(8,))
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        initial = model.get_weights()
        model.fit(data, epochs=2, verbose=0)
        return initial, model.get_weights()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for name in zoo.list_models():
        initial, single = trained(name, tf.distribute.get_strategy())
        initial_mirrored, both = trained(name, mirrored)
        assert all(np.array_equal(a, b) for a, b in zip(initial, initial_mirrored)), name
        moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, single))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, both))
        print(name, moved, diff)
        assert moved > 1e-3 and diff < 1e-5, (name, moved, diff)
""")


def test_mirrored_training_matches_a_single_device():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) >= 3
