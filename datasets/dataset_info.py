"""What a dataset holds: its modalities, its task, its splits and where it comes from.

`DatasetInfo` is plain data. Models are built from it (`zoo.create(name, info)`), and the parts a model needs
(`Modality`, `Task`) turn into JSON-ready dicts with `get_config()` so that a saved model carries them in its config.
"""

import dataclasses

MODALITY_KINDS = ("image", "spectrogram", "sequence", "vector", "text")
TASK_TYPES = ("classification", "regression")


@dataclasses.dataclass(frozen=True)
class Modality:
    """One input of a dataset.

    Args:
        name: str. The key of this modality in every feature dict, `keras.Input` and serving signature.
        shape: tuple. Shape of one example, without the batch axis; `None` marks a variable length.
        dtype: str. Tensor dtype of the features.
        kind: str. One of `MODALITY_KINDS`; zoo models choose an encoder by it.
        description: str. What the features are.
        standardize: dict or None. {"mean": [...], "std": [...]} over the last axis, from the training split: the
            model standardises this modality itself (`FusionModel`), so it takes the features as the files hold
            them, in training, `predict` and exports alike.
        raw: dict or None. How the features come from what a user has, when that is not a per-feature scaling
            (`multisensory.datasets.raw_inputs`): e.g. {"kind": "waveform", "samples": 18262, "sample_rate": 8000,
            "window": 400, "stride": 200} for a spectrogram of a front-padded recording. `FusionModel.preprocess`
            and the exports' serving functions apply it, so a served model takes the recording itself.
    """

    name: str
    shape: tuple
    dtype: str = "float32"
    kind: str = "vector"
    description: str = ""
    standardize: dict = None
    raw: dict = None

    def __post_init__(self):
        if self.kind not in MODALITY_KINDS:
            raise ValueError(f"Modality '{self.name}': kind must be one of {MODALITY_KINDS}, got '{self.kind}'.")
        object.__setattr__(self, "shape", tuple(self.shape))
        if self.standardize is not None:  # kept hashable: (mean, std) tuples
            stats = dict(self.standardize)
            if set(stats) != {"mean", "std"} or len(stats["mean"]) != len(stats["std"]):
                raise ValueError(f"Modality '{self.name}': standardize must be {{'mean': [...], 'std': [...]}} of one "
                                 f"length, got {self.standardize}.")
            object.__setattr__(self, "standardize", tuple(sorted(
                (k, tuple(float(v) for v in values)) for k, values in stats.items())))
        if self.raw is not None:
            from .raw_inputs import check_raw

            object.__setattr__(self, "raw", tuple(sorted(check_raw(self.name, dict(self.raw)).items())))

    @property
    def is_sequence(self):
        """Whether axis 1 of a batch counts front-padded steps: a "sequence" or "text" of rank 2 or more."""
        return self.kind in ("sequence", "text") and len(self.shape) >= 2

    def get_config(self):
        config = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "kind": self.kind,
                  "description": self.description}
        if self.standardize is not None:
            config["standardize"] = {k: list(values) for k, values in self.standardize}
        if self.raw is not None:
            config["raw"] = dict(self.raw)
        return config

    @classmethod
    def from_config(cls, config):
        return config if isinstance(config, cls) else cls(**config)


@dataclasses.dataclass(frozen=True)
class Task:
    """What is predicted.

    Args:
        type: str. `"classification"` (integer labels in [0, num_classes)) or `"regression"` (a float per example).
        num_classes: int. Number of classes K for classification.
        value_range: tuple. (low, high) of regression targets, e.g. sentiment in [-3, 3].
        metrics: tuple of str. Names of the metrics reported (see `multisensory.training.metrics`).
    """

    type: str
    num_classes: int = None
    value_range: tuple = None
    metrics: tuple = ()

    def __post_init__(self):
        if self.type not in TASK_TYPES:
            raise ValueError(f"Task type must be one of {TASK_TYPES}, got '{self.type}'.")
        if self.type == "classification" and not (self.num_classes and self.num_classes >= 2):
            raise ValueError("A classification task needs num_classes >= 2.")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.value_range is not None:
            object.__setattr__(self, "value_range", tuple(self.value_range))

    @property
    def output_size(self):
        return self.num_classes if self.type == "classification" else 1

    def get_config(self):
        return {"type": self.type, "num_classes": self.num_classes,
                "value_range": None if self.value_range is None else list(self.value_range),
                "metrics": list(self.metrics)}

    @classmethod
    def from_config(cls, config):
        return config if isinstance(config, cls) else cls(**config)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Everything known about a dataset before any file is read.

    Args:
        name: str. Registry name.
        modalities: tuple of `Modality`.
        task: `Task`.
        splits: dict. Split name to number of examples (with default options).
        license: str. Licence of the data.
        citation: str. How to cite the data.
        source: str. Where the files come from.
        files: str. The layout expected under the data directory (empty for generated data).
    """

    name: str
    modalities: tuple
    task: Task
    splits: dict
    license: str = ""
    citation: str = ""
    source: str = ""
    files: str = ""

    def __post_init__(self):
        object.__setattr__(self, "modalities", tuple(Modality.from_config(m) for m in self.modalities))

    @property
    def modality_names(self):
        return tuple(m.name for m in self.modalities)

    def get_config(self):
        """A JSON-ready dict of everything in the info."""
        return {"name": self.name, "modalities": [m.get_config() for m in self.modalities],
                "task": self.task.get_config(), "splits": dict(self.splits), "license": self.license,
                "citation": self.citation, "source": self.source}

    def modality(self, name):
        for m in self.modalities:
            if m.name == name:
                return m
        raise ValueError(f"Dataset '{self.name}' has no modality '{name}'; its modalities are {list(self.modality_names)}.")
