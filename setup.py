"""Installs the four packages of the repository root under the `multisensory` namespace."""

from setuptools import find_packages, setup

PACKAGES = ("zoo", "datasets", "training", "exports")

setup(
    name="multisensory",
    version="0.1.0",
    description="A Keras 3 model zoo of brain-inspired multimodal fusion.",
    python_requires=">=3.10",
    packages=[f"multisensory.{p}{sub}" for p in PACKAGES for sub in [""] + [f".{s}" for s in find_packages(p)]],
    package_dir={f"multisensory.{p}": p for p in PACKAGES},
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "keras-tuner==1.4.8",
        "tensorboard==2.21.0",
        "tensorflow-serving-api==2.21.0",
        "numpy",
        "h5py",
        "pyarrow",
        "matplotlib",
    ],
    entry_points={"console_scripts": ["multisensory=multisensory.training.cli:main"]},
)
