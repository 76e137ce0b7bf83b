"""Reading dataset pickles without running code from them.

`pickle.load` calls whatever global a file names, so a pickle from the internet can run any code. Dataset pickles
(CIFAR batches, the MulT / MMSA sentiment files, UR-FUNNY) hold only plain containers (dict, list, tuple, str,
bytes, numbers), which pickle builds without naming a global, and numpy arrays, which need a handful of numpy
globals. `load` admits exactly those and refuses any other global with `UnsafePickleError` (a
`pickle.UnpicklingError`); a file that is not a readable pickle raises `DataFileError` naming it.
"""

import pickle

from .files import DataFileError, reading, regular_file

_NUMPY_GLOBALS = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell a bytes object
}


class UnsafePickleError(pickle.UnpicklingError, DataFileError):
    """A pickle names a global other than numpy's array builders and plain containers."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers only."""

    def __init__(self, file, path="<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.path = path

    def find_class(self, module, name):
        module = "builtins" if module == "__builtin__" else module  # Python 2 and protocol-2 pickles
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        package, _, submodule = module.rpartition(".")
        if package in ("numpy.core", "numpy._core") and (submodule, name) in _NUMPY_GLOBALS:
            return super().find_class(f"numpy._core.{submodule}", name)
        raise UnsafePickleError(
            f"'{self.path}' refers to '{module}.{name}'; dataset pickles may hold only numpy arrays and plain "
            "containers, so it is not loaded (unpickling it could run arbitrary code).")


def load(path, encoding="latin1"):
    """Unpickles a dataset file admitting only numpy arrays and plain containers.

    Args:
        path: str. The pickle file.
        encoding: str. How Python 2 strings decode (`"latin1"` keeps numpy buffers intact).
    """
    with reading(regular_file(path)), open(path, "rb") as f:
        return RestrictedUnpickler(f, path=path, encoding=encoding).load()
