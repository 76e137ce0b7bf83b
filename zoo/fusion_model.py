"""`FusionModel`: the contract every zoo model follows.

    inputs {modality: tensor} -> encoders[m] -> Z_m -> fusion -> Z -> head -> prediction

`model(inputs)` returns the prediction only (logits (batch, K) for classification, a value (batch,) for
regression), so `fit`, `evaluate`, `predict` and exports see one tensor. `model(inputs, return_outputs=True)` is
the one channel through which training add-ons and analysis tools get more: a dict with

- `"prediction"`: what `model(inputs)` returns;
- `"unimodal"`: {modality: Z_m}, the unimodal representations;
- `"fused"`: Z, the fused representation;
- model-specific extras documented by each model (e.g. `"unimodal_predictions"` of late fusion,
  `"branch_log_probabilities"` of the multiplicative models).

Subclasses compute that dict in `forward(inputs, training)`. Inputs are checked at the boundary: a missing or
unexpected modality, a wrong shape, different batch sizes or a non-floating dtype raises before any layer runs, with
the modality's name in the message, on every call (`check_inputs`); `fit`, `evaluate`, `predict` and exports also
refuse NaN and infinite inputs (`check_finite`), and `predict` an empty batch. A direct call `model(x)` is the
forward pass those steps run and does not check values (a check per call would also run inside every training
graph twice); pass its inputs through `check_finite` where they may hold NaN.

Training runs one forward pass per step and minimises the sum of the named terms that `loss_terms` returns from
the outputs dict (by default the compiled loss on the prediction plus any `model.losses`, exactly what Keras'
own `train_step` minimises). Schemes whose objective differs override `loss_terms`, not the training loop.

Every model takes `head="plain" | "mul" | "mulmix"` (or a `MultiplicativeConfig`): the multiplicative head of Liu et
al. (`multisensory.zoo.multiplicative_head`) replaces the model's plain head, predicts from Z_1..Z_M (and Z) and
trains with the multiplicative loss. A subclass builds its plain head only when `self.plain_head` is True and, when
it is False, leaves `"prediction"` out of `forward`'s dict; `call` adds it.

Any model with two or more modalities takes `synergy=SynergyConfig(...)` (Shankar's cortical-network regulariser,
`multisensory.training.synergy`): a training-only C-Network measures L_reg on Z_1..Z_M and Z. Parameters then come
in two groups, one tape and one gradient call each (`objectives`): the model's weights minimise the task terms +
beta L_reg with the compiled optimiser; the C-Network minimises L_reg with its own AdamW (`synergy_optimizer`, built
in `compile`, hence inside the strategy scope). `call`, `predict` and exports never run the C-Network.

Precision (`multisensory.zoo.precision`): the layers compute in the Keras dtype policy that is global when the model
is built (`zoo.create(..., precision=)`); the model itself is float32 (its dtype), so inputs are taken and
standardised in float32 and the prediction is float32, as are the multiplicative head's log-probabilities and the
C-Network. Under mixed_float16 `compile` wraps both optimisers in Keras' `LossScaleOptimizer`.
"""

import weakref
from collections.abc import Mapping

import keras
import tensorflow as tf

from multisensory.datasets.dataset_info import Modality, Task
from multisensory.datasets.noise import real_steps
from multisensory.datasets.raw_inputs import to_features
from multisensory.training.losses import MultiplicativeLoss, branch_terms, class_losses

from . import optimizers, precision, recurrent
from .multiplicative_head import MultiplicativeConfig, MultiplicativeHead
from .recipes import get_recipe


def check_inputs(inputs, modalities):
    """Raises `TypeError`/`ValueError` naming the modality when `inputs` does not match `modalities`.

    Shapes known when the call is traced are checked then; a dimension left unknown (a function retraced with
    relaxed shapes, e.g. by `predict` after a second batch size) and the batch sizes across modalities are checked
    when the graph runs, so the check holds on every call.
    """
    names = [m.name for m in modalities]
    if not isinstance(inputs, Mapping):
        raise TypeError(f"Expected a dict {{modality: tensor}} with keys {names}, got {type(inputs).__name__}.")
    missing = [n for n in names if n not in inputs]
    extra = [k for k in inputs if k not in names]
    if missing:
        raise ValueError(f"Missing modality {', '.join(repr(n) for n in missing)}; the model's modalities are {names}.")
    if extra:
        raise ValueError(f"Unexpected modality {', '.join(repr(k) for k in extra)}; the model's modalities are {names}.")
    batch = {}
    for m in modalities:
        x = inputs[m.name]
        shape = tuple(x.shape)
        expected = ", ".join(["batch"] + [str(d) for d in m.shape])
        if len(shape) != len(m.shape) + 1 or any(
                e is not None and s is not None and s != e for s, e in zip(shape[1:], m.shape)):
            raise ValueError(f"Modality '{m.name}': expected shape ({expected}), got {shape}.")
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" not in dtype:
            raise TypeError(f"Modality '{m.name}': expected a floating-point tensor ({m.dtype}), got {dtype}.")
        unknown = [i for i, (s, e) in enumerate(zip(shape[1:], m.shape), 1) if s is None and e is not None]
        if unknown:
            tf.debugging.assert_equal(tf.gather(tf.shape(x), unknown), [m.shape[i - 1] for i in unknown],
                                      message=f"Modality {m.name}: expected shape ({expected}); got sizes")
        batch[m.name] = shape[0]
    sizes = {n: b for n, b in batch.items() if b is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"Modalities have different batch sizes: {sizes}.")
    if len(sizes) < len(batch) and len(batch) > 1:
        first = tf.shape(inputs[names[0]])[0]
        for name in names[1:]:
            tf.debugging.assert_equal(tf.shape(inputs[name])[0], first, message=(
                f"Modalities have different batch sizes: {name} and {names[0]}"))


def check_finite(inputs, modalities):
    """`inputs` with each modality checked for NaN and infinity when it is computed (an error naming the
    modality): predictions from such values are meaningless, however confident. Anything else about the inputs is
    left to `check_inputs`, which the model's call runs."""
    if not isinstance(inputs, Mapping):
        return inputs
    tensors = {m.name: tf.convert_to_tensor(inputs[m.name]) for m in modalities if m.name in inputs}
    return {**inputs, **{name: tf.debugging.check_numerics(x, f"Modality '{name}': the input holds NaN or infinite "
                                                              "values")
                         for name, x in tensors.items() if x.dtype.is_floating}}


# {model: (its metrics' variable ids, the traced reset)}; kept outside the model, which would track the function
_RESETS = weakref.WeakKeyDictionary()
# input signatures whose concrete predict functions `predict_on_batch` keeps per model
MAX_PREDICT_SIGNATURES = 32


class Standardize(keras.layers.Layer):
    """(x - mean) / std over the last axis with a modality's statistics (`Modality.standardize`: training-split
    statistics, or mean 0 and std 255 for pixels), inside the model, so it takes features as the files hold them.
    Built from the modality, which the model's config holds, so it has no weights of its own.

    Every value is standardised, a real zero (a black pixel, a silent feature) like any other, so the output is
    continuous in the input. Padding and absence are said, not guessed from zeros:
    - a sequence's padding (a modality of kind "sequence" or "text" with steps on axis 1): the zoo front-pads with
      all-zero steps, so the steps before the first one holding a non-zero value are padding
      (`zoo.sentiment.sequence_lstm.padding_mask`, as the models' masks read them) and stay 0; a real all-zero
      step after it is standardised;
    - a dropped modality: the pipeline replaces it with its absent value, the training mean for a standardised
      fixed-shape modality (`multisensory.datasets.noise`), which this layer maps to exactly 0; a dropped sequence
      is all padding and stays 0.
    """

    def __init__(self, modality, **kwargs):
        super().__init__(name=f"standardize_{modality.name}", **kwargs)
        stats = dict(modality.standardize)
        self.mean = tf.constant(stats["mean"], tf.float32)
        self.std = tf.constant([s if s > 0 else 1.0 for s in stats["std"]], tf.float32)
        self.sequence = modality.is_sequence

    def call(self, x):
        scaled = (x - tf.cast(self.mean, x.dtype)) / tf.cast(self.std, x.dtype)
        if not self.sequence:
            return scaled
        real = real_steps(x)
        real = tf.reshape(real, tf.concat([tf.shape(real), tf.ones([len(x.shape) - 2], tf.int32)], 0))
        return tf.where(real, scaled, tf.zeros_like(scaled))


@keras.saving.register_keras_serializable(package="multisensory")
class FusionModel(keras.Model):
    """Base class of zoo models: per-modality encoders, a fusion and a head over a dict of modalities.

    Subclasses create their layers in `__init__` and implement `forward`.

    Args:
        modalities: list of `Modality` or their configs (`DatasetInfo.modalities`).
        task: `Task` or its config.
        synergy: `SynergyConfig` (or its config), or None.
        head: "plain", "mul", "mulmix", a `MultiplicativeConfig` or its config (see the module docstring).
        recipe: str or None. A paper's training recipe (`multisensory.zoo.recipes`): the optimiser `compile()`
            builds by default, the schedule `recipe(epochs)` returns as callbacks, its batch size; None for the
            zoo's default (Adam at `default_learning_rate`, no schedule); the class's `default_recipe` when omitted.
    """

    default_learning_rate = 1e-3  # of the optimiser `compile()` creates by default
    # `predict` runs the model XLA-compiled (one compilation per input shape): set by the classes measured faster
    # at batch 1 (docs/performance.md); `model.jit_predict = False` before the first `predict` turns it off
    jit_predict = False
    default_recipe = None

    def __init__(self, modalities, task, synergy=None, head="plain", recipe="default", **kwargs):
        if precision.policy_name(kwargs.get("dtype")) not in (None, "float32"):
            raise ValueError(f"A zoo model takes and returns float32 (its dtype); build it with precision="
                             f"'{precision.policy_name(kwargs['dtype'])}' (or under Keras' global policy) to compute "
                             f"in mixed precision.")
        super().__init__(**{**kwargs, "dtype": "float32"})
        # the policy its layers compute in (`multisensory.zoo.precision`): Keras' global policy when it is built
        self.precision = precision.current()
        self.recipe_name = self.default_recipe if recipe == "default" else recipe
        if self.recipe_name is not None:
            get_recipe(self.recipe_name)  # unknown names list the known ones
        self.modalities = tuple(Modality.from_config(m) for m in modalities)
        self.task = Task.from_config(task)
        with precision.float32():
            self.standardizers = {m.name: Standardize(m) for m in self.modalities if m.standardize is not None}
        self.multiplicative = MultiplicativeConfig.parse(head)
        if self.multiplicative is not None:
            if self.task.type != "classification":
                raise ValueError(
                    f"The multiplicative head ('{self.multiplicative.kind}') combines class predictions and needs a "
                    f"classification task; this task is {self.task.type}. For sentiment scores, use the binary view "
                    f"(the dataset option binary='has0' or 'non0' of mosi and mosei).")
            self.objective = MultiplicativeLoss(self.multiplicative.beta, self.multiplicative.boosted,
                                                self.multiplicative.margin, self.multiplicative.branch_weights)
        self.cnetwork = None
        if synergy is not None:
            from multisensory.training.cortical_network import CNetwork

            with precision.float32():  # its terms overflow float16 (see `multisensory.zoo.precision`)
                self.cnetwork = CNetwork(synergy, self.unimodal_names, name="c_network")

    @property
    def modality_names(self):
        return tuple(m.name for m in self.modalities)

    def recipe(self, epochs=None, learning_rate=None):
        """The schedule of the model's recipe as Keras callbacks for a run of `epochs` (none without a recipe),
        starting from `learning_rate` (None: the recipe's initial rate)."""
        from multisensory.training.metrics import selection_metric

        return [] if self.recipe_name is None else get_recipe(self.recipe_name).callbacks(
            epochs, *selection_metric(self.task), learning_rate=learning_rate)

    @property
    def recipe_batch_size(self):
        """The batch size of the model's recipe, or None."""
        return None if self.recipe_name is None else get_recipe(self.recipe_name).batch_size

    @property
    def unimodal_names(self):
        """The keys of `outputs["unimodal"]`: the modalities (a model whose Z_m are other parts overrides it)."""
        return self.modality_names

    @property
    def plain_head(self):
        """Whether the model predicts with its own (plain) head rather than the multiplicative one."""
        return self.multiplicative is None

    def _multiplicative_outputs(self, outputs, training):
        """Adds the multiplicative head's prediction -l^c and `"branch_log_probabilities"` to `forward`'s dict."""
        config = self.multiplicative
        branches = list(outputs["unimodal"].values()) + ([outputs["fused"]] if config.fused_branch else [])
        if not hasattr(self, "multiplicative_head"):  # built on the first call, when the branches are known
            self.multiplicative_head = MultiplicativeHead(self.task.num_classes, len(branches), config.mix,
                                                          config.hidden, config.dropout, config.width,
                                                          name="multiplicative_head")
            subsets = self.multiplicative_head.subsets
            if config.branch_weights is not None and len(config.branch_weights) != len(subsets):
                raise ValueError(f"{len(config.branch_weights)} branch weights for {len(subsets)} "
                                 f"{'mixtures' if config.mix else 'branches'}.")
            # each branch's (or mixture's) term of the loss at the true class, logged as a metric
            self.branch_trackers = [keras.metrics.Mean(name=f"branch_{'_'.join(map(str, c))}_loss")
                                    for c in subsets]
        log_probs = self.multiplicative_head(branches, training=training)
        scores = -class_losses(log_probs, config.beta, config.branch_weights)
        return {**outputs, "prediction": scores, "branch_log_probabilities": log_probs}

    def forward(self, inputs, training=None):
        """Returns {"prediction", "unimodal", "fused", ...}; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward().")

    def _outputs(self, inputs, training=None):
        if self.standardizers:
            inputs = {**inputs, **{m: layer(inputs[m]) for m, layer in self.standardizers.items()}}
        outputs = self.forward(inputs, training=training)
        if not self.plain_head:
            return self._multiplicative_outputs(outputs, training)  # float32 (the head's log-softmax)
        return {**outputs, "prediction": keras.ops.cast(outputs["prediction"], "float32")}

    def call(self, inputs, training=None, return_outputs=False):
        check_inputs(inputs, self.modalities)
        outputs = self._outputs(inputs, training=training)
        return outputs if return_outputs else outputs["prediction"]

    def loss_terms(self, x, y, outputs, sample_weight=None, training=True):
        """{name: scalar loss} minimised together; each is scaled for `tf.distribute` like a Keras `Loss`."""
        if not self.plain_head:
            log_probs = outputs["branch_log_probabilities"]
            terms = branch_terms(log_probs, self.multiplicative.beta, self.multiplicative.branch_weights)
            true_class = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y, (-1,)), "int32"), terms.shape[-1])
            # the batch's mean per branch, weighted by its size: a replica's empty share of a last batch adds nothing
            rows = keras.ops.cast(keras.ops.shape(terms)[0], terms.dtype)
            per_example = keras.ops.sum(terms * true_class[:, None, :], axis=-1)  # (batch, branches)
            per_branch = keras.ops.sum(per_example, axis=0) / keras.ops.maximum(rows, 1.0)
            for k, tracker in enumerate(self.branch_trackers):
                tracker.update_state(per_branch[k], sample_weight=rows)
            terms = {"multiplicative": self.objective(y, log_probs, sample_weight)}
        else:
            terms = {"task": self.compute_loss(x=x, y=y, y_pred=outputs["prediction"], sample_weight=sample_weight,
                                               training=training)}
        l2 = 0.0 if self.recipe_name is None else get_recipe(self.recipe_name).l2
        if l2:
            terms["l2"] = self.l2_term(l2)
        return terms

    def l2_term(self, l2):
        """The recipe's L2 term (l2 / 2) * sum of the squared kernels of the model's own layers (dense and
        convolution weights: no biases, normalisation or C-Network weights; `multisensory.zoo.recipes`), divided by
        the replicas in sync, whose gradients are summed."""
        kernels = [v for v in self.variable_groups()[0] if v.path.rsplit("/", 1)[-1] == "kernel"]
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        return 0.5 * l2 * tf.add_n([tf.reduce_sum(tf.square(tf.cast(k, tf.float32))) for k in kernels]) / replicas

    @property
    def synergy(self):
        """The `SynergyConfig`, or None."""
        return None if self.cnetwork is None else self.cnetwork.synergy

    def objectives(self, x, y, outputs, sample_weight=None, training=True):
        """[(variables, loss)]: the parameter groups and what each minimises (see the module docstring).

        Without synergy, one group: all trainable weights on the sum of `loss_terms`. With synergy, the C-Network's
        L_reg is computed on Z_m and Z gathered from all replicas (the global batch's statistics) and divided by the
        number of replicas, whose gradients are summed.
        """
        loss = sum(self.loss_terms(x, y, outputs, sample_weight, training).values())
        if self.cnetwork is None:
            return [(self.trainable_variables, loss)]
        model_variables, cnetwork_variables = self.variable_groups()
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        sizes = self.cnetwork.sizes  # restored after all_gather, which (like distributed input) loses them
        gather = (lambda t, k: t) if replicas == 1 else (
            lambda t, k: tf.reshape(context.all_gather(t, axis=0), (-1, sizes[k])))
        terms = self.cnetwork({m: gather(z, m) for m, z in outputs["unimodal"].items()},
                              gather(outputs["fused"], "fused"), training=training)
        regulariser = self.cnetwork.regulariser(terms) / replicas
        return [(model_variables, loss + self.synergy.beta * regulariser), (cnetwork_variables, regulariser)]

    def variable_groups(self):
        """(the model's trainable weights, the C-Network's): what `optimizer` and `synergy_optimizer` update."""
        if self.cnetwork is None:
            return self.trainable_variables, []
        own = {id(v) for v in self.cnetwork.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in own], self.cnetwork.trainable_variables

    def _objective(self, data, training):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = check_finite(x, self.modalities)  # `fit` and `evaluate` refuse NaN and infinite inputs, as `predict` does
        outputs = self(x, training=training, return_outputs=True)
        groups = self.objectives(x, y, outputs, sample_weight, training)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":  # the model's objective, logged unscaled by the number of replicas
                metric.update_state(groups[0][1] * replicas, sample_weight=tf.shape(outputs["prediction"])[0])
        return x, y, sample_weight, outputs, groups

    def train_step(self, data):
        optimizers = [self.optimizer] + ([self.synergy_optimizer] if self.cnetwork is not None else [])
        with tf.GradientTape(persistent=len(optimizers) > 1) as tape:
            x, y, sample_weight, outputs, groups = self._objective(data, training=True)
            losses = [optimizer.scale_loss(loss) for optimizer, (_, loss) in zip(optimizers, groups)]
        for optimizer, (variables, _), loss in zip(optimizers, groups, losses):
            optimizer.apply(tape.gradient(loss, variables), variables)
        return self.compute_metrics(x, y, outputs["prediction"], sample_weight=sample_weight)

    def test_step(self, data):
        x, y, sample_weight, outputs, _ = self._objective(data, training=False)
        return self.compute_metrics(x, y, outputs["prediction"], sample_weight=sample_weight)

    def reset_metrics(self):
        """Keras' `reset_metrics` (every metric's `reset_state`) as one traced call, retraced when the metrics'
        variables change (a new `compile`, metrics built on the first step). `train_on_batch` and `test_on_batch`
        reset the metrics on every call: eagerly 2.1 ms for CMU-MOSEI's eight metrics and the loss, a fifth of an
        `ef_lstm` training step, traced 0.36 ms (docs/performance.md). A model compiled with `run_eagerly=True`
        resets eagerly, as Keras does: its metrics may keep state outside variables."""
        if self.run_eagerly:
            return super().reset_metrics()
        metrics = self.metrics
        key = tuple(id(v) for metric in metrics for v in metric.variables)
        if _RESETS.get(self, (None,))[0] != key:
            def reset():
                for metric in metrics:
                    metric.reset_state()

            # called as a concrete function: no argument matching, and no retracing warning from TensorFlow when
            # many models are built and reset once or twice each (each model traces its own)
            _RESETS[self] = key, tf.function(reset, autograph=False).get_concrete_function()
        _RESETS[self][1]()

    def predict_step(self, data):
        """Keras' `predict_step`, refusing inputs with NaN or infinite values (`check_finite`); the model's call
        XLA-compiled when the class sets `jit_predict` (the check stays outside: XLA drops it)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = check_finite(x, self.modalities)
        if self.jit_predict and tf.inside_function():
            return tf.function(lambda x: self(x, training=False), jit_compile=True, autograph=False)(x)
        return self(x, training=False)

    def preprocess(self, inputs):
        """What a user has -> the features `call` takes: a modality with a `raw` spec (`Modality.raw`, e.g. a
        recording to its spectrogram, `multisensory.datasets.raw_inputs`) is converted, with its optional
        `<modality>_mask`; the others pass as they are (their scaling is inside the model). Exports serve
        `model(model.preprocess(raw))`."""
        if not isinstance(inputs, Mapping):
            raise TypeError(f"Expected a dict {{modality: tensor}} with keys {list(self.modality_names)}, got "
                            f"{type(inputs).__name__}.")
        masks = {f"{m.name}_mask" for m in self.modalities if m.raw is not None}
        features = {k: v for k, v in inputs.items() if k not in masks}
        for m in self.modalities:
            if m.raw is not None and m.name in features:
                features[m.name] = to_features(m, features[m.name], inputs.get(f"{m.name}_mask"))
        return features

    def _check_batch(self, x):
        """`check_inputs` of a dict of arrays, and at least one example, before `predict` or `predict_on_batch`
        hands it to Keras: a bad input fails with the modality's name instead of an error inside Keras."""
        check_inputs(x, self.modalities)
        if not next(iter(x.values())).shape[0]:
            raise ValueError("No example to predict: the inputs' batch dimension is 0.")

    def predict(self, x, *args, **kwargs):
        """Keras' `predict`; a dict of arrays is checked up front (modalities, shapes, dtypes, one batch size, at
        least one example)."""
        if isinstance(x, Mapping):
            self._check_batch(x)
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        """Keras' `predict_on_batch`; a dict of arrays is checked up front as by `predict`, converted to tensors and
        given to the concrete function of Keras' predict function for its signature (names, shapes, dtypes), kept
        per model: calling the `tf.function` matches its nested arguments anew on every call, 0.11-0.17 ms at batch
        1, 11-15% of an `ef_lstm` or `mfn` call (docs/performance.md). Any other input, and a model compiled with
        `run_eagerly=True`, takes Keras' path. Under a strategy of several replicas the batch runs once, eagerly:
        Keras' predict function would give every replica the whole batch and return each row once per replica."""
        if not isinstance(x, Mapping) or self.run_eagerly:
            return super().predict_on_batch(x)
        self._check_batch(x)
        if self.distribute_strategy.num_replicas_in_sync > 1:
            outputs = self.predict_step((x,))
        else:
            x = {k: tf.convert_to_tensor(v) for k, v in x.items()}
            outputs = self._concrete_predict_function(x)([(x,)])
        return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)

    def _concrete_predict_function(self, x):
        """The concrete function of Keras' predict function for the signature (names, shapes, dtypes) of the dict of
        tensors `x`, kept per model for `predict_on_batch`."""
        self.make_predict_function()
        signature = tuple(sorted((k, tuple(v.shape), v.dtype.name) for k, v in x.items()))
        function, concrete = getattr(self, "_predict_concrete", (None, {}))
        if function is not self.predict_function or len(concrete) >= MAX_PREDICT_SIGNATURES:
            # a new predict function (`compile`, `make_predict_function(force=True)`), or many batch sizes: Keras'
            # function traces again only where it has not relaxed its shapes, so refilling costs little
            concrete = {}
            # outside Keras' attribute tracking: the functions are not the model's state
            object.__setattr__(self, "_predict_concrete", (self.predict_function, concrete))
        if signature not in concrete:
            concrete[signature] = self.predict_function.get_concrete_function([(x,)])
        return concrete[signature]

    def build(self, input_shape=None):
        """Creates all weights from the modality specs (a variable length is built with 4 steps) by one eager call on
        zeros, whose LSTMs run the portable loop: XLA would compile every loop for a batch of one nobody sends."""
        dummy = {m.name: keras.ops.zeros((1,) + tuple(4 if d is None else d for d in m.shape), m.dtype)
                 for m in self.modalities}
        with recurrent.compiled_loops(False):
            outputs = self._outputs(dummy, training=False)
        if self.cnetwork is not None:
            with precision.float32():
                self.cnetwork.build({m: tuple(z.shape) for m, z in outputs["unimodal"].items()},
                                    tuple(outputs["fused"].shape))

    def _head_output(self, outputs):
        """Shapes the head's output into the prediction: logits (batch, K), or a value (batch,) for regression."""
        return outputs if self.task.type == "classification" else keras.ops.squeeze(outputs, -1)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras `compile` with task defaults: the recipe's optimiser, or Adam(`default_learning_rate`) (Keras'
        Adam with a fused update, `zoo.optimizers`), cross-entropy on logits or MAE, the task's metrics.

        With synergy the default is AdamW with gradients clipped to the value 5 (the paper's Appendix C), and the
        C-Network's own optimiser is created and built here, so that compiling inside a strategy scope places it there.
        With the multiplicative head the model minimises its own loss (configured in the head), so `loss` must stay
        "auto".
        """
        from multisensory.training.metrics import task_metrics

        if not self.plain_head:
            if loss not in ("auto", None):
                raise ValueError("A model with the multiplicative head minimises its own loss (configure beta, "
                                 "boosted, margin and branch_weights in `head`); compile it without `loss`.")
            loss = None
        recipe = None if self.recipe_name is None else get_recipe(self.recipe_name)
        if optimizer == "auto" and recipe is not None and recipe.optimizer is not None:
            optimizer = recipe.optimizer()
        elif optimizer == "auto":
            rate = self.default_learning_rate
            optimizer = (optimizers.Adam(rate) if self.cnetwork is None
                         else optimizers.AdamW(rate, **self.synergy.clipping))
        if loss == "auto":
            loss = (keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                    if self.task.type == "classification" else keras.losses.MeanAbsoluteError())
        if metrics == "auto":
            metrics = task_metrics(self.task)
        # loss scaling under mixed_float16 (Keras does it from the model's own dtype, float32 here: see __init__)
        super().compile(optimizer=precision.loss_scaled(optimizer, self.precision), loss=loss, metrics=metrics,
                        **kwargs)
        if self.cnetwork is not None:
            self.synergy_optimizer = self.synergy.optimizer()
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):  # also a loaded mixed_float16 model's
                self.synergy_optimizer = keras.optimizers.LossScaleOptimizer(self.synergy_optimizer)
        if self.built:  # each optimiser holds state for its own group only; built now, the first step traces once
            model_variables, cnetwork_variables = self.variable_groups()
            self.optimizer.build(model_variables)
            if self.cnetwork is not None:
                self.synergy_optimizer.build(cnetwork_variables)

    def compile_from_config(self, config):
        """Restores the compile settings saved in a `.keras` file (Keras skips this for an overridden `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    def get_config(self):
        config = {**super().get_config(), "modalities": [m.get_config() for m in self.modalities],
                  "task": self.task.get_config()}
        if self.cnetwork is not None:
            config["synergy"] = self.synergy.get_config()
        if not self.plain_head:
            config["head"] = self.multiplicative.get_config()
        if self.recipe_name != self.default_recipe:
            config["recipe"] = self.recipe_name
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
