"""tf.data pipelines of multimodal datasets: `load`, `info`, `list_datasets`, noise transforms."""

from . import av_mnist, cifar, higgs, sentiment, synthetic_av, ur_funny  # noqa: F401  (registers the datasets)
from .dataset_info import DatasetInfo, Modality, Task
from .corruptions import CORRUPTIONS
from .noise import add_at_snr, augment, bank_noise, dropout_modality, white_noise
from .registry import DATA_ENV, RawDomain, Source, array_source, info, list_datasets, load, register_dataset

__all__ = ["DatasetInfo", "Modality", "Task", "Source", "RawDomain", "array_source", "DATA_ENV", "load", "info",
           "list_datasets", "register_dataset", "CORRUPTIONS", "augment", "add_at_snr", "bank_noise", "white_noise",
           "dropout_modality"]
