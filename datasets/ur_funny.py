"""`ur_funny`: UR-FUNNY v2 humor detection (Hasan et al. 2019), modalities `text`, `audio`, `vision`.

Binary classification (1: the punchline made the audience laugh). Read from the public v2 pickles in
`<data_dir>/ur_funny/` with the restricted unpickler:
- `data_folds.pkl`: {"train" | "dev" | "test": [segment ids]};
- `language_sdk.pkl`: {id: {"punchline_embedding_indexes": [word index, ...],
  "context_embedding_indexes": [[word index, ...], ...], "punchline_sentence", "context_sentences", ...}};
- `word_embedding_list.pkl`: the GloVe 840B 300-d vector of every word index;
- `covarep_features_sdk.pkl` / `openface_features_sdk.pkl`: {id: {"punchline_features": (n words, 81 / 371),
  "context_features": [(n words, D), ...]}}, averaged over each word;
- `humor_label_sdk.pkl`: {id: 0 or 1}.

Each example is the punchline's words (with `context=True`, the context sentences' words before them), brought to
`max_len` steps as in `sequence_features` (front padding, last steps kept, non-finite values 0).
"""

import os

import numpy as np

from . import safe_pickle
from .files import cache_watching
from .dataset_info import DatasetInfo, Modality, Task
from .registry import array_source, missing_files_error, register_dataset
from .sequence_features import finite, front_pad, standardize

FILES = {"folds": "data_folds.pkl", "language": "language_sdk.pkl", "embeddings": "word_embedding_list.pkl",
         "audio": "covarep_features_sdk.pkl", "vision": "openface_features_sdk.pkl", "labels": "humor_label_sdk.pkl"}
FOLDS = {"train": "train", "validation": "dev", "test": "test"}
SIZES = {"text": 300, "audio": 81, "vision": 371}
_DESCRIPTIONS = {"text": "GloVe 840B word vectors", "audio": "COVAREP features averaged per word",
                 "vision": "OpenFace2 features averaged per word"}


def _info(length=None, splits=None):
    return DatasetInfo(
        name="ur_funny",
        modalities=tuple(Modality(m, (length, d), "float32", "sequence", _DESCRIPTIONS[m]) for m, d in SIZES.items()),
        task=Task("classification", num_classes=2, metrics=("accuracy", "error", "auc")),
        splits=splits or {"train": 10_598, "validation": 2_626, "test": 3_290},
        license="UR-FUNNY: research use (see its repository).",
        citation=("Hasan et al. (2019), UR-FUNNY: A Multimodal Language Dataset for Understanding Humor, "
                  "EMNLP-IJCNLP."),
        source="https://github.com/ROC-HCI/UR-FUNNY (v2 feature pickles).",
        files="\n".join(f"  ur_funny/{f}" for f in FILES.values()),
    )


INFO = _info()


def _words(entry, key, context):
    """The punchline's per-word rows, after the context sentences' rows when `context`."""
    rows = [np.asarray(s).reshape(len(s), -1) for s in entry[f"context_{key}"] if len(s)] if context else []
    rows.append(np.asarray(entry[f"punchline_{key}"]).reshape(len(entry[f"punchline_{key}"]), -1))
    return np.concatenate(rows) if rows else np.zeros((0, 1))


@cache_watching(lambda data_dir, *_, **__: [os.path.join(data_dir, "ur_funny")])
def read_splits(data_dir, max_len=50, context=False, normalize=False):
    """{split: ({modality: (n, max_len, D)}, labels (n,))}."""
    folder = os.path.join(data_dir, "ur_funny")
    missing = [f"ur_funny/{f}" for f in FILES.values() if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise missing_files_error(INFO, data_dir, missing)
    data = {k: safe_pickle.load(os.path.join(folder, f)) for k, f in FILES.items()}
    embeddings = finite(np.asarray(data["embeddings"]))
    splits = {}
    for split, key in FOLDS.items():
        ids = list(data["folds"][key])
        text = [embeddings[_words(data["language"][i], "embedding_indexes", context).astype(int).reshape(-1)]
                for i in ids]
        features = {"text": np.stack([front_pad(t, max_len) for t in text]),
                    "audio": np.stack([front_pad(_words(data["audio"][i], "features", context), max_len)
                                       for i in ids]),
                    "vision": np.stack([front_pad(_words(data["vision"][i], "features", context), max_len)
                                        for i in ids])}
        splits[split] = features, np.array([int(data["labels"][i]) for i in ids], dtype="int32")
    if normalize:
        standardize(splits, SIZES)
    return splits


def describe(data_dir, max_len=50, context=False, normalize=False):
    splits = read_splits(os.path.abspath(data_dir), max_len, context, normalize)
    return _info(max_len, {split: len(labels) for split, (_, labels) in splits.items()})


def load_split(split, data_dir, seed=0, max_len=50, context=False, normalize=False):
    """Loader of UR-FUNNY; `context` prepends the context sentences, `max_len` fixes the length."""
    features, labels = read_splits(os.path.abspath(data_dir), max_len, context, normalize)[split]
    return array_source(features, labels)


register_dataset(INFO, load_split, describe)
