"""Shared fixtures. Real data comes from $MULTISENSORY_DATA; tests that need it fail (not skip) without it."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    path = os.environ.get("MULTISENSORY_DATA")
    if not path or not os.path.isdir(path):
        pytest.fail("MULTISENSORY_DATA must point at the real data directory (../shared/data, see its README); "
                    f"got {path!r}.")
    return path
