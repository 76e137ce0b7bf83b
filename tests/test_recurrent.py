"""`FastLSTM` and the models built on it against the stock formulation: same weights, same outputs and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from multisensory import zoo
from multisensory.zoo import recurrent
from model_harness import SMALL, TWO_SEQUENCES, two_sequences
from test_mmlatch import THREE, _three

B, T, D, U = 5, 9, 6, 4


def _padded():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, :4] = False  # front padding
    mask[1, [2, 5, 8]] = False  # gaps, and a masked last step
    mask[2, :] = False  # nothing real
    mask[3, -2:] = False
    x[~mask] = 0
    return x, mask


def _twins(make, x, mask):
    """(FastLSTM-based layer, the stock layer) with the same random weights (non-zero biases)."""
    fast = make(recurrent.LSTM)
    with recurrent.stock_formulation():
        stock = make(recurrent.LSTM)
    fast(x[:1], mask=mask[:1])
    stock(x[:1], mask=mask[:1])
    rng = np.random.default_rng(1)
    weights = [w + 0.3 * rng.standard_normal(w.shape).astype("float32") for w in fast.get_weights()]
    fast.set_weights(weights)
    stock.set_weights(weights)
    return fast, stock


def _outputs_and_gradients(layer, x, mask, traced=False):
    """The layer's outputs and the gradients of a loss on them, eagerly or in a `tf.function` (`traced`)."""
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, mask=mask)
            y = list(y) if isinstance(y, (list, tuple)) else [y]
            loss = sum(tf.reduce_sum(tf.sin(1.3 * v)) for v in y)
        return y, tape.gradient(loss, [x] + layer.trainable_weights)

    y, grads = (tf.function(run) if traced else run)(tf.constant(x))
    return [v.numpy() for v in y], [g.numpy() for g in grads]


LAYERS = {
    "sequences": lambda L: L(U, return_sequences=True),
    "last": lambda L: L(U),
    "backwards": lambda L: L(U, return_sequences=True, go_backwards=True),
    "backwards_last": lambda L: L(U, go_backwards=True),
    "bidirectional": lambda L: keras.layers.Bidirectional(L(U, return_sequences=True), merge_mode="sum"),
    "bidirectional_last": lambda L: keras.layers.Bidirectional(L(U), merge_mode="concat"),
    "states": lambda L: L(U, return_sequences=True, return_state=True),
    "zero_output": lambda L: L(U, return_sequences=True, zero_output_for_mask=True),
    "zero_output_last": lambda L: L(U, zero_output_for_mask=True),
    "zero_output_backwards_last": lambda L: L(U, zero_output_for_mask=True, go_backwards=True),
}


@pytest.mark.parametrize("xla", [True, "eager", False, "fused"])
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_layer_matches_keras_lstm(case, masked, xla, monkeypatch):
    """XLA-compiled loops (in a traced function), the graph functions an eager call runs, the portable loop, and the
    portable loop's fused kernel (for small batches, here B)."""
    if xla in (False, "fused"):  # without XLA, the fused kernel runs batches up to the limit for its input width
        assert recurrent.fused_max_batch(D) == recurrent.FUSED_MAX_BATCH_NARROW
        monkeypatch.setattr(recurrent, "FUSED_MAX_BATCH_NARROW", B if xla == "fused" else B - 1)
        xla = False
    x, mask = _padded()
    mask = mask if masked else None
    fast, stock = _twins(LAYERS[case], x, np.ones((B, T), bool) if mask is None else mask)
    layer = fast.forward_layer if case.startswith("bidirectional") else fast
    assert type(layer) is recurrent.FastLSTM and layer._fast()
    with recurrent.compiled_loops(xla is not False):
        fast_out, fast_grads = _outputs_and_gradients(fast, x, mask, traced=xla is True)
    stock_out, stock_grads = _outputs_and_gradients(stock, x, mask)
    for a, b in zip(fast_out + fast_grads, stock_out + stock_grads):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_an_eager_call_runs_graph_functions_and_compiles_nothing():
    """An eager call is a one-off: its loops run as graph functions, XLA compiles nothing for its shapes."""
    xla = [f.experimental_get_tracing_count() for f in (recurrent._forward_xla, recurrent._backward_xla)]
    graph = [f.experimental_get_tracing_count() for f in (recurrent._forward_graph, recurrent._backward_graph)]
    layer = recurrent.LSTM(3, return_sequences=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 11, 2)).astype("float32"))  # shapes no other test uses
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    tape.gradient(y, x)
    assert [f.experimental_get_tracing_count() for f in (recurrent._forward_xla, recurrent._backward_xla)] == xla
    assert [f.experimental_get_tracing_count() for f in (recurrent._forward_graph, recurrent._backward_graph)] == [
        n + 1 for n in graph]


def _gradients(layer, x, mask, persistent=False):
    with tf.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(1.3 * layer(x, mask=mask)))
    return tape.gradient(loss, [x] + layer.trainable_weights)


def test_the_portable_loop_differentiates_in_a_graph_both_ways(monkeypatch):
    """In a traced export the portable loop holds both formulations behind a `tf.cond` on the batch size."""
    x, mask = _padded()
    fast, stock = _twins(LAYERS["sequences"], x, mask)
    monkeypatch.setattr(recurrent, "FUSED_MAX_BATCH_NARROW", B - 1)
    with recurrent.compiled_loops(False), recurrent.stacked_weights(fast):
        traced = tf.function(lambda x, mask: _gradients(fast, x, mask))
        for rows in (B - 1, B):  # the fused kernel, then the loop
            got = traced(tf.constant(x[:rows]), tf.constant(mask[:rows]))
            expected = _gradients(stock, tf.constant(x[:rows]), mask[:rows])
            for a, b in zip(got, expected):
                np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("rows", [1, B])
def test_the_portable_loop_trains_under_a_persistent_tape(rows):
    """A function traced under `compiled_loops(False)` outside an export (e.g. a synergy model's training step, whose
    tape is persistent) runs the portable loop alone: a `tf.cond` there could not be differentiated."""
    x, mask = _padded()
    fast, stock = _twins(LAYERS["sequences"], x, mask)
    with recurrent.compiled_loops(False):
        got = tf.function(lambda x, mask: _gradients(fast, x, mask, persistent=True))(
            tf.constant(x[:rows]), tf.constant(mask[:rows]))
    for a, b in zip(got, _gradients(stock, tf.constant(x[:rows]), mask[:rows])):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_dropout_uses_one_mask_per_sequence_as_the_stock_layer():
    x = np.ones((2, T, D), "float32")
    layer = recurrent.LSTM(U, dropout=0.5, return_sequences=True, seed=3)
    with recurrent.stock_formulation():
        stock = recurrent.LSTM(U, dropout=0.5, return_sequences=True, seed=3)
    layer(x), stock(x)
    stock.set_weights(layer.get_weights())
    # the same seed gives the same (per sequence) input mask, so the same outputs
    np.testing.assert_allclose(layer(x, training=True), stock(x, training=True), atol=1e-5)
    assert not np.allclose(layer(x, training=True), layer(x, training=False))


def test_other_settings_fall_back_to_the_stock_loop():
    layer = recurrent.LSTM(U, recurrent_dropout=0.1)
    assert type(layer) is recurrent.FastLSTM and not layer._fast()
    x, _ = _padded()
    with recurrent.stock_formulation():
        stock = recurrent.LSTM(U, recurrent_dropout=0.1)
    layer(x), stock(x)
    stock.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x), stock(x), atol=1e-6)


def test_saves_as_a_keras_lstm_with_its_config(tmp_path):
    layer = recurrent.LSTM(U, return_sequences=True, dropout=0.25)
    x, mask = _padded()
    model = keras.Sequential([keras.Input((T, D)), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.layers[0]) is recurrent.FastLSTM and loaded.layers[0].dropout == 0.25
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def _three_padded():
    x = _three()
    for v in x.values():
        v[:2, :2] = 0.0  # two rows front-padded by two steps
        v[2, 1] = 0.0  # a step missing in one modality only
    return x


MODELS = [("mmlatch", THREE, _three_padded(), {**SMALL["mmlatch"], "units": 6}),
          ("mmlatch", THREE, _three_padded(), {**SMALL["mmlatch"], "units": 6, "feedback": None}),
          ("mfn", TWO_SEQUENCES, two_sequences(8)[0], {"units": 8, "memory": 8, "attention_hidden": 8}),
          ("ef_lstm", TWO_SEQUENCES, two_sequences(8)[0], {}),
          ("tfn", TWO_SEQUENCES, two_sequences(8)[0], {})]


@pytest.mark.parametrize("name, info, x, config", MODELS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODELS)])
def test_model_matches_its_stock_formulation(name, info, x, config):
    """Outputs and every weight's gradient of the zoo model equal those of its twin built from stock layers."""
    model = zoo.create(name, info, **config)
    with recurrent.stock_formulation():
        stock = zoo.create(name, info, **config)
    stock.set_weights(model.get_weights())
    x = {k: tf.constant(v) for k, v in x.items()}

    def run(m):
        with tf.GradientTape() as tape:
            y = m(x, training=False)
            loss = tf.reduce_sum(tf.sin(y))
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, m.trainable_weights)]

    (y, grads), (y_stock, grads_stock) = run(model), run(stock)
    np.testing.assert_allclose(y, y_stock, atol=1e-5)
    assert len(grads) == len(grads_stock)
    for g, g_stock in zip(grads, grads_stock):
        np.testing.assert_allclose(g, g_stock, atol=1e-5)


def _compiled_functions(path):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(open(f"{path}/saved_model.pb", "rb").read())
    functions = saved.meta_graphs[0].graph_def.library.function
    return [f.signature.name for f in functions if f.attr["_XlaMustCompile"].b]


def test_exports_are_portable_unless_asked_for_xla(tmp_path):
    """TF-Serving runs XLA on CPU only behind a flag: the default export has no XLA-compiled function."""
    from multisensory import exports

    model = zoo.create("ef_lstm", TWO_SEQUENCES, units=4, embed=4)
    x, _ = two_sequences(4)
    portable = exports.export_saved_model(model, str(tmp_path), model_name="m", version=1)
    compiled = exports.export_saved_model(model, str(tmp_path), model_name="m", version=2, xla=True)
    assert _compiled_functions(portable) == [] and _compiled_functions(compiled)
    for path in (portable, compiled):
        served = tf.saved_model.load(path).signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
        np.testing.assert_allclose(served["probabilities"], keras.ops.softmax(model.predict(x, verbose=0)), atol=1e-5)


def test_each_export_holds_the_stacked_weights_of_its_time(tmp_path):
    """The fused kernel reads [K; R] from a copy the export makes: a later export after training has the new weights,
    the earlier one keeps its own, and both answer as the model did when exported."""
    from multisensory import exports

    model = zoo.create("ef_lstm", TWO_SEQUENCES, units=4, embed=4)
    x, _ = two_sequences(recurrent.FUSED_MAX_BATCH)  # a batch the fused kernel runs, whatever the width
    before = model.predict(x, verbose=0)
    first = exports.export_saved_model(model, str(tmp_path), model_name="m")
    model.set_weights([w * 1.5 for w in model.get_weights()])
    after = model.predict(x, verbose=0)
    second = exports.export_saved_model(model, str(tmp_path), model_name="m")
    assert np.abs(after - before).max() > 1e-2
    for path, expected in ((first, before), (second, after)):
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        assert len([v for v in serve.variables if v.name.endswith("_stacked:0")]) == 1  # ef_lstm's one LSTM
        served = serve(**{k: tf.constant(v) for k, v in x.items()})
        np.testing.assert_allclose(served["logits"], expected, atol=1e-5)


def test_compiled_predict_matches_the_call_and_still_refuses_nan():
    model = zoo.create("mfn", TWO_SEQUENCES, units=8, memory=8, attention_hidden=8)
    assert model.jit_predict
    x, _ = two_sequences(8)
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), atol=1e-5)
    x["words"][0, 5, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="Modality 'words': the input holds NaN"):
        model.predict(x, verbose=0)


def test_an_export_traces_a_recurrent_model_once(tmp_path, monkeypatch):
    """The exports' copies of [K; R] exist before the serving function is traced (a `tf.function` that creates
    variables while tracing is traced a second time): one trace for the plain inputs, none for the gradients."""
    from multisensory import exports

    model = zoo.create("mfn", TWO_SEQUENCES, units=4, memory=4, attention_hidden=4)  # LSTM cells outside FastLSTM
    traces = []
    monkeypatch.setattr(model, "preprocess", lambda raw: traces.append(1) or raw)
    path = exports.export_saved_model(model, str(tmp_path), model_name="m")
    assert len(traces) == 1
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]
    assert len([v for v in serve.variables if v.name.endswith("_stacked:0")]) == len(TWO_SEQUENCES.modalities)
    x, _ = two_sequences(2)
    np.testing.assert_allclose(serve(**{k: tf.constant(v) for k, v in x.items()})["logits"],
                               model.predict(x, verbose=0), atol=1e-5)


def test_bidirectional_layers_built_while_a_model_loads_get_their_own_copies():
    """Keras hands an object serialised with a recorded id the copy made for the first object of that id while a
    model loads; `recurrent.Bidirectional` keeps its template alive, so no later template can take its id."""
    import gc
    import weakref

    from keras.src.saving.serialization_lib import ObjectSharingScope

    template = recurrent.LSTM(3, return_sequences=True)
    alive = weakref.ref(template)
    wrapper = recurrent.Bidirectional(template, merge_mode="sum")
    del template
    gc.collect()
    assert alive() is not None  # kept alive: a freed template's id could go to a later one
    with ObjectSharingScope():  # as during `keras.saving.load_model`
        wrappers = []
        for units in range(4, 44):  # templates freed by the collector between constructions: ids get reused
            wrappers.append(recurrent.Bidirectional(recurrent.LSTM(units, return_sequences=True), merge_mode="sum"))
            gc.collect()
    for units, w in zip(range(4, 44), wrappers):
        assert (w.forward_layer.units, w.backward_layer.units) == (units, units)
        assert not w.forward_layer.go_backwards and w.backward_layer.go_backwards
    assert len({id(w.forward_layer) for w in wrappers} | {id(w.backward_layer) for w in wrappers}) == 80
    assert wrapper.forward_layer is not wrapper.backward_layer
