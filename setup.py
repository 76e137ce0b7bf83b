"""The package mapping `pyproject.toml` cannot state: the four packages of the repository root install under the
`multisensory` namespace (`zoo/` as `multisensory.zoo`, ...). Everything else is in `pyproject.toml`."""

from setuptools import find_packages, setup

PACKAGES = ("zoo", "datasets", "training", "exports")

setup(
    packages=[f"multisensory.{p}{sub}" for p in PACKAGES for sub in [""] + [f".{s}" for s in find_packages(p)]],
    package_dir={f"multisensory.{p}": p for p in PACKAGES},
)
