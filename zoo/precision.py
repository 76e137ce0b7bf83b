"""Mixed precision: the Keras dtype policy a zoo model computes in.

`zoo.create(..., precision=)`, `runs.train(precision=)` and `--precision` on `train`, `tune` and `benchmark` take

- `"float32"`: every layer computes and keeps its weights in float32 (the default);
- `"mixed_float16"`: layers compute in float16 and keep float32 weights; training scales the loss
  (`keras.optimizers.LossScaleOptimizer`, dynamic) so that small gradients survive float16. For GPUs (compute
  capability 7.0 and newer run it on Tensor Cores); TensorFlow's CPU kernels compute float16 slower than float32, so
  it is refused on a machine without a GPU;
- `"mixed_bfloat16"`: layers compute in bfloat16 (float32's range, 8 bits of mantissa, no loss scaling). For GPUs of
  compute capability 8.0 and newer and TPUs; on CPU only where the processor has bfloat16 instructions (AVX512_BF16
  or AMX), refused elsewhere.

As Keras' own mixed-precision guide has it, the policy is read when layers are built: `policy(name)` sets it for the
layers built inside. A zoo model's boundary stays float32 whatever the policy (`FusionModel`): its inputs are taken
and standardised in float32, its prediction is float32 logits (softmax, log-softmax, losses and metrics in float32),
the multiplicative head's log-probabilities and class losses are float32, and the synergy C-Network computes its
terms (MMD, the Donsker-Varadhan bound, the kurtosis with its matrix solve) in float32, where float16 would overflow.
Weights are float32 under every policy, so a `.keras` file or an export of a mixed-precision run loads into a float32
model with the same weights. Keras' global policy (`keras.mixed_precision.set_global_policy`) works too, unchecked.
"""

import contextlib
import functools

import keras

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def check(name):
    """Raises `ValueError` for an unknown policy or one this machine's devices cannot run (see the module
    docstring); returns the name."""
    if name not in POLICIES:
        raise ValueError(f"Unknown precision '{name}'; choose one of {', '.join(POLICIES)}.")
    if name == "float32":
        return name
    gpus = gpu_capabilities()
    if name == "mixed_float16" and not gpus:
        raise ValueError("mixed_float16 needs a GPU: this machine has none, and TensorFlow's CPU kernels compute "
                         "float16 slower than float32. Train in float32 here (or mixed_bfloat16 on a CPU with "
                         "bfloat16 instructions).")
    if name == "mixed_bfloat16":
        if gpus and min(gpus) < (8, 0):
            raise ValueError(f"mixed_bfloat16 needs GPUs of compute capability 8.0 or newer; these have "
                             f"{', '.join('.'.join(map(str, c)) for c in gpus)}. Use mixed_float16.")
        if not gpus and not cpu_has_bfloat16():
            raise ValueError("mixed_bfloat16 on CPU needs bfloat16 instructions (AVX512_BF16 or AMX), which this "
                             "processor lacks; train in float32 here, or on a GPU.")
    return name


@functools.cache
def cpu_has_bfloat16():
    """Whether the processor has bfloat16 instructions (x86's `avx512_bf16` or `amx_bf16` flags; Arm's `bf16`)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {word for line in f if line.startswith(("flags", "Features")) for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def gpu_capabilities():
    """[(major, minor)] compute capability of each visible GPU."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


@contextlib.contextmanager
def policy(name):
    """Builds the layers created inside under Keras' dtype policy `name` (checked by `check`); restores the previous
    global policy after. None leaves the current policy."""
    if name is None:
        yield
        return
    check(name)
    with _global_policy(name):
        yield


@contextlib.contextmanager
def _global_policy(name):
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def float32():
    """Builds the layers created inside in float32 whatever the global policy (the C-Network, standardisation)."""
    return _global_policy("float32")


def unchecked(name):
    """Builds the layers created inside under the policy `name` without `check`: a copy of a model built already."""
    return _global_policy(name)


def policy_name(dtype):
    """The policy name of a Keras `dtype` argument (a name, a `DTypePolicy` or its config), None for None."""
    if dtype is None:
        return None
    return keras.dtype_policies.get(dtype).name


def recorded(name):
    """The precision as a run's or study's settings record it: {"precision": name}, nothing for float32 (so that the
    settings of runs from before the option compare equal)."""
    return {} if name == "float32" else {"precision": name}


def current():
    """The name of Keras' global dtype policy, which layers built now compute in."""
    return keras.config.dtype_policy().name


def loss_scaled(optimizer, name):
    """`optimizer` wrapped in Keras' dynamic `LossScaleOptimizer` when the policy `name` is mixed_float16."""
    if name != "mixed_float16" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(keras.optimizers.get(optimizer))

