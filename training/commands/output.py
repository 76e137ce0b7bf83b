"""How much a command prints: `--quiet`, the default, `--verbose`.

- quiet: no progress output (Keras `verbose=0`), only results and errors;
- default: Keras' progress bar on a terminal, one line per epoch otherwise (a log file gets ~100 bytes an epoch,
  not a redrawn bar per step); TensorFlow's start-up lines that say nothing about the run are left out;
- verbose: the progress bar everywhere and every line TensorFlow logs.

TensorFlow's C++ runtime writes its start-up lines (no CUDA driver on a CPU machine, the CPU instructions the
binary was built for, absl's note on logging before initialisation) to file descriptor 2 while it loads, some of them
whatever `TF_CPP_MIN_LOG_LEVEL` says. `import_tensorflow` loads it with descriptor 2 redirected to a temporary file
and writes back every line except those (`HARMLESS`), so a real error or warning still reaches stderr.
"""

import contextlib
import os
import re
import sys
import tempfile
import warnings

HARMLESS = re.compile("|".join((
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
    r"cuda_executor\.cc:\d+\] .*(kernel driver does not appear|could not open file to read NUMA)",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"oneDNN custom operations are on",
)))


def fit_verbosity(args):
    """Keras `fit`'s `verbose` for the command's --quiet/--verbose."""
    if getattr(args, "quiet", False):
        return 0
    if getattr(args, "verbose", False):
        return 1
    return 1 if sys.stdout.isatty() else 2


@contextlib.contextmanager
def _filtered_stderr():
    """Runs the block with file descriptor 2 captured, then writes back the lines `HARMLESS` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not HARMLESS.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow(args):
    """Imports TensorFlow (and looks up its devices, where the CUDA lines come from) under the verbosity of `args`."""
    if getattr(args, "verbose", False):
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # Keras warns that `shuffle` is ignored for a tf.data input on every `fit`: the zoo's datasets shuffle themselves
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored")
    with _filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf
