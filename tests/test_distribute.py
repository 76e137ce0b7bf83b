"""Zoo models train under `tf.distribute.MirroredStrategy` exactly as on one device (two logical CPUs).

One SGD step on one batch split over two replicas must give the single-device weights: the replicas' gradients
are summed, so each must differentiate its share of the loss. (Over many steps float rounding differences grow
through batch normalisation, so one step is the sharp test.) A loss scaled the wrong way moves the weights twice
or half as far: a relative difference of order 1. Synchronised batch normalisation computes the batch variance
as E[x^2] - E[x]^2 across replicas, which leaves relative differences of order 1e-4; the bound is 1e-3.

The check runs one harness case per way a training step can differ (every model shares `FusionModel.train_step`,
so architectures that differ only in their layers add nothing here): the compiled loss; the multiplicative loss with
mixtures; batch normalisation; the synergy regulariser's second parameter group with MMD (gathered batch
statistics) and with KL critics; MMLatch's two stages (recurrent layers included). Four of them (the compiled loss, the
multiplicative branches' logged terms, batch normalisation, MMLatch) then train, predict and evaluate on 33 and 34
rows at batch 32 (a replica gets 0 or 1 rows of the last batch), and MMLatch trained
under the strategy is exported and served.
"""

import os
import subprocess
import sys
import textwrap

CASES = ("additive_fusion", "mulmix", "resnet_cifar-mul", "lmf-synergy_mmd", "mfn-synergy_kl", "mmlatch-lstm_lstm")
REMAINDERS = ("additive_fusion", "mulmix", "resnet_cifar-mul", "mmlatch-lstm_lstm")  # plain, branches, BN, RNN
EXPORTED = ("mmlatch-lstm_lstm",)  # its export under a strategy failed before `export_saved_model` made a plain copy

SCRIPT = textwrap.dedent("""
    import sys
    import tempfile
    sys.path.insert(0, {tests!r})
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from multisensory import zoo
    from multisensory.exports import export_saved_model
    from model_harness import model_cases

    def trained(name, info, data, config, strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = zoo.create(name, info, **config)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        initial = model.get_weights()
        model.fit(data, epochs=1, verbose=0)
        return initial, model.get_weights(), model

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for case_id, name, info, (features, labels), config in model_cases():
        if case_id not in {cases!r}:
            continue
        data = tf.data.Dataset.from_tensor_slices(({{k: v[:32] for k, v in features.items()}}, labels[:32])).batch(32)
        initial, single, _ = trained(name, info, data, config, tf.distribute.get_strategy())
        initial_mirrored, both, model = trained(name, info, data, config, mirrored)
        assert all(np.array_equal(a, b) for a, b in zip(initial, initial_mirrored)), case_id
        moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, single))
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, both))
        print(case_id, moved, diff)
        assert moved > 1e-3 and diff < 1e-3 * moved, (case_id, moved, diff)
        if case_id == {first!r}:  # one batch predicted once, not once per replica
            x = {{k: v[:5] for k, v in features.items()}}
            np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, verbose=0), atol=1e-6)
        # A last batch of 1 or 2 rows leaves a replica 0 or 1 rows: training, predict and evaluate go on, and
        # predict matches one device with the same weights row for row.
        for rows in (33, 34) if case_id in {remainders!r} else ():
            x, y = {{k: v[:rows] for k, v in features.items()}}, labels[:rows]
            model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=1, verbose=0)
            assert all(np.isfinite(w).all() for w in model.get_weights()), (case_id, rows)
            one = zoo.create(name, info, **config)  # built
            one.set_weights(model.get_weights())
            np.testing.assert_allclose(model.predict(x, batch_size=32, verbose=0),
                                       one.predict(x, batch_size=32, verbose=0), atol=1e-4, rtol=1e-4)
            logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
            assert all(np.isfinite(v) for v in logs.values()), (case_id, rows, logs)
        if case_id in {exported!r}:  # trained under the strategy, exported and served on one device
            export = tf.saved_model.load(export_saved_model(model, tempfile.mkdtemp(), model_name="m"))
            x = {{k: tf.constant(v[:3]) for k, v in features.items()}}
            out = export.signatures["serving_default"](**x)
            np.testing.assert_allclose(out["logits"], model.predict(x, verbose=0), atol=1e-4)
""").format(tests=os.path.dirname(os.path.abspath(__file__)), cases=CASES, first=CASES[0], exported=EXPORTED,
           remainders=REMAINDERS)


def test_mirrored_training_matches_a_single_device():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.strip().splitlines()) == len(CASES), result.stdout
