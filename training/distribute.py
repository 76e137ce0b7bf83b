"""`tf.distribute` strategies for `multisensory train | tune --strategy`, and the fix Keras 3.15's `fit` needs under
`MultiWorkerMirroredStrategy`.

- `default`: no strategy (one device);
- `mirrored`: `tf.distribute.MirroredStrategy` over the visible devices;
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, its cluster read from `TF_CONFIG`.

The batch size a user gives is the global batch size: each of R replicas gets 1/R of every batch, and the replicas'
gradients are summed (every training scheme of the zoo scales its loss terms for that: `FusionModel.objectives`).

Keras 3.15's TensorFlow trainer fails under `MultiWorkerMirroredStrategy` out of the box (keras-team/keras#20585 and
#20329), in two places:
1. `TensorFlowTrainer._maybe_symbolic_build` reduces the whole nested data batch with `strategy.reduce`, which
   takes one tensor in multi-worker mode ("Attempt to convert a value ({'image': PerReplica ...}) ... to a Tensor").
   A symbolic build only needs shapes and dtypes: the fix takes them from the dataset's element spec. It draws no
   batch, so it also spends no iterator: Keras' own draws one from a new iterator, which with a reshuffling
   dataset (every training split here) spends one shuffle order, so that a distributed run would see its epochs
   in other orders than the same run on one device. The fix applies under every explicit strategy.
2. `reduce_per_replica(..., reduction="mean")` reduces every value along axis 0, scalars (the metrics) included,
   which multi-worker reduction rejects. The fix reduces scalars over the replicas (axis None).
`patch_distributed_fit()` (applied by `strategy()` for "mirrored" and "multiworker") replaces both functions with
versions that call Keras' own wherever the fix does not apply. A test runs an unpatched multi-worker `fit` and
expects Keras' error: it fails once Keras fixes the trainer, and the patch can go.
"""

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

STRATEGIES = ("default", "mirrored", "multiworker")
_ORIGINAL = {"reduce_per_replica": tf_trainer.reduce_per_replica,
             "_maybe_symbolic_build": tf_trainer.TensorFlowTrainer._maybe_symbolic_build}


def strategy(name="default"):
    """The `tf.distribute` strategy called `name` (see the module docstring); unknown names list the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy '{name}'; strategies: {', '.join(STRATEGIES)}.")
    if name == "default":
        return tf.distribute.get_strategy()
    patch_distributed_fit()
    return tf.distribute.MirroredStrategy() if name == "mirrored" else tf.distribute.MultiWorkerMirroredStrategy()


def worker_index(strategy):
    """This worker's index in a multi-worker cluster (`TF_CONFIG`'s task index), 0 otherwise: 0 is the chief."""
    if not _multi_worker(strategy):
        return 0
    return int(strategy.cluster_resolver.task_id or 0)


def _multi_worker(strategy):
    return tf_trainer._collective_all_reduce_multi_worker(strategy)


def _first_local(value, strategy):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _reduce_per_replica(values, strategy, reduction):
    """Keras' `reduce_per_replica`, with scalars averaged over the replicas in multi-worker mode."""
    if reduction in ("auto", "mean") and _multi_worker(strategy):
        def mean(value):
            rank = _first_local(value, strategy).shape.rank
            return strategy.reduce("MEAN", value, axis=0 if rank else None)

        return tree.map_structure(mean, values)
    return _ORIGINAL["reduce_per_replica"](values, strategy, reduction)


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras' `_maybe_symbolic_build`, building from the dataset's element spec rather than from a drawn batch."""
    if iterator is not None and self._distribute_strategy is not None:
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        iterator = None
    return _ORIGINAL["_maybe_symbolic_build"](self, iterator=iterator, data_batch=data_batch)


def patch_distributed_fit():
    """Applies the two fixes (see the module docstring); idempotent, and without effect without a strategy."""
    tf_trainer.reduce_per_replica = _reduce_per_replica
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def unpatch_distributed_fit():
    """Restores Keras' own functions."""
    tf_trainer.reduce_per_replica = _ORIGINAL["reduce_per_replica"]
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _ORIGINAL["_maybe_symbolic_build"]
