"""Dataset pickles: numpy arrays and plain containers load, anything that names another global is refused."""

import collections
import marshal
import os
import pickle

import numpy as np
import pytest

from multisensory.datasets import safe_pickle


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class _CarriesCode:
    """Unpickles into a code object (marshalled inside the pickle)."""

    def __reduce__(self):
        return (marshal.loads, (marshal.dumps(compile("print('pwned')", "<payload>", "exec")),))


def test_arrays_and_containers_round_trip(tmp_path):
    payload = {"train": {"text": np.random.rand(3, 4, 5).astype("float32"), "labels": np.arange(3.0)[:, None],
                         "id": [("a", 1), ("b", 2)]},
               "meta": collections.OrderedDict(k=np.int64(7)), "raw": b"\x00\xff", "set": {1, 2}}
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
        loaded = safe_pickle.load(str(path))
        np.testing.assert_array_equal(loaded["train"]["text"], payload["train"]["text"])
        assert loaded["train"]["id"] == payload["train"]["id"] and loaded["raw"] == b"\x00\xff"
        assert loaded["meta"]["k"] == 7 and loaded["set"] == {1, 2}


@pytest.mark.parametrize("evil", [_RunsCode(), _CarriesCode(), {"nested": [np.zeros(2), _RunsCode()]}])
def test_code_is_refused(tmp_path, evil):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(evil))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays and plain containers"):
        safe_pickle.load(str(path))


def test_object_arrays_are_read_through_the_same_rules(tmp_path):
    path = tmp_path / "objects.pkl"
    path.write_bytes(pickle.dumps(np.array([_RunsCode()], dtype=object)))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|nt.system"):
        safe_pickle.load(str(path))
