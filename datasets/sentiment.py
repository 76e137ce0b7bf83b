"""`mosi` and `mosei`: CMU-MOSI and CMU-MOSEI multimodal sentiment, modalities `text`, `audio`, `vision`.

Labels are sentiment scores in [-3, 3] (regression; the task reports MAE, Pearson correlation, Acc-2 and F1 in
their has-0 and non-0 forms, Acc-5 and Acc-7). Three public formats are read from `<data_dir>/<name>/`, the first
found in this order unless the option `file=` names one:

1. MulT's aligned pickles (Tsai et al. 2019), `mosi_data.pkl` / `mosei_senti_data.pkl`:
   `{"train" | "valid" | "test": {"text", "audio", "vision": (N, 50, D), "labels": (N, 1, 1), "id": ...}}`.
2. MMSA's pickles, `aligned_50.pkl` then `unaligned_50.pkl`: the same split keys, with `"text"` (BERT features,
   D = 768), `"audio"`, `"vision"` (unaligned: each modality its own length) and `"regression_labels"` (N,).
3. CMU-MultimodalSDK computational sequences, `*.csd` (HDF5: `<sequence>/data/<segment>/features`), already
   aligned to words: one file per modality, recognised by its name (text: WordVectors / GloVe / BERT; audio:
   COVAREP / OpenSMILE; vision: FACET / OpenFace / Visual; labels: Labels, first column = sentiment). Segments
   `video[i]` are split by video: `folds.json` in the folder ({"train" | "valid" | "test": [video ids]}) gives the
   split; without it a seeded 70 / 10 / 20 split of the videos is used (not the SDK's standard folds, which are
   code of the SDK, not files). Sequences are brought to `max_len` steps (see `sequence_features`).

Pickles are read with the restricted unpickler (`safe_pickle`): numpy arrays and plain containers only. Non-finite
values become 0 and `normalize=True` standardises with training statistics (`sequence_features`).

The binary view (`binary="has0"` or `"non0"`): the papers' Acc-2 as a 2-class task, for models that need classes
(the multiplicative head). `"has0"` labels negative (< 0) as class 0 and non-negative (>= 0) as class 1; `"non0"`
labels negative 0 and positive (> 0) 1 and leaves out the examples whose score is exactly 0. The task is then
classification with accuracy, error and AUC.

Feature sizes depend on the file (MulT's MOSI pickle: GloVe 300, COVAREP subset 5, FACET subset 20; SDK: GloVe
300, COVAREP 74, FACET 47 (MOSI) / 35 (MOSEI); MMSA: BERT 768). `datasets.info(name)` gives the SDK sizes with a
free length; `datasets.info(name, data_dir=...)` describes the files found, and models are built from that.
"""

import glob
import json
import os

import numpy as np

from . import safe_pickle
from .files import cache_watching, reading, regular_file
from .dataset_info import DatasetInfo, Modality, Task
from .registry import SPLITS, array_source, missing_files_error, register_dataset
from .sequence_features import finite, front_pad, standardize

MODALITIES = ("text", "audio", "vision")
SENTIMENT_METRICS = ("mae", "pearson", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7")
PICKLE_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
MULT_FILES = {"mosi": "mosi_data.pkl", "mosei": "mosei_senti_data.pkl"}
MMSA_FILES = ("aligned_50.pkl", "unaligned_50.pkl")
CSD_PATTERNS = {"text": ("wordvector", "glove", "bert"), "audio": ("covarep", "opensmile"),
                "vision": ("facet", "openface", "visual"), "labels": ("label",)}
VIDEO_FRACTIONS = (0.7, 0.1, 0.2)
_SDK_SIZES = {"mosi": (300, 74, 47), "mosei": (300, 74, 35)}
_DESCRIPTIONS = {"text": "word vectors (GloVe 300, or BERT 768)", "audio": "COVAREP acoustic features",
                 "vision": "FACET facial features"}


BINARY_VIEWS = ("has0", "non0")
BINARY_TASK = Task("classification", num_classes=2, metrics=("accuracy", "error", "auc"))


def _info(name, shapes, splits, binary=None):
    title = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI"}[name]
    return DatasetInfo(
        name=name,
        modalities=tuple(Modality(m, shapes[m], "float32", "sequence", _DESCRIPTIONS[m]) for m in MODALITIES),
        task=(BINARY_TASK if binary else Task("regression", value_range=(-3, 3), metrics=SENTIMENT_METRICS)),
        splits=splits,
        license="CMU Multimodal SDK data: research use (see the SDK's terms).",
        citation={"mosi": "Zadeh et al. (2016), MOSI: Multimodal Corpus of Sentiment Intensity, IEEE Intelligent "
                          "Systems.",
                  "mosei": "Zadeh et al. (2018), Multimodal Language Analysis in the Wild: CMU-MOSEI, ACL."}[name],
        source=f"{title}: CMU-MultimodalSDK (.csd); MulT's and MMSA's processed pickles.",
        files=(f"  {name}/{MULT_FILES[name]}               MulT's aligned pickle\n"
               f"  or {name}/aligned_50.pkl, unaligned_50.pkl   MMSA's pickles\n"
               f"  or {name}/*.csd (+ optional folds.json)       CMU-MultimodalSDK computational sequences"),
    )


INFOS = {n: _info(n, {m: (None, d) for m, d in zip(MODALITIES, _SDK_SIZES[n])},
                  {"mosi": {"train": 1284, "validation": 229, "test": 686},
                   "mosei": {"train": 16326, "validation": 1871, "test": 4659}}[n])
         for n in ("mosi", "mosei")}


def _find(folder, name, file):
    if file:
        if not os.path.exists(os.path.join(folder, file)):
            raise FileNotFoundError(f"Dataset '{name}': '{os.path.join(folder, file)}' does not exist.")
        return file
    for candidate in (MULT_FILES[name],) + MMSA_FILES:
        if os.path.isfile(os.path.join(folder, candidate)):
            return candidate
    return "*.csd" if glob.glob(os.path.join(folder, "*.csd")) else None


def _from_pickle(path):
    data = safe_pickle.load(path)
    splits = {}
    with reading(path):
        for split, key in PICKLE_SPLITS.items():
            part = data[key]
            labels = part["labels"] if "labels" in part else part["regression_labels"]
            splits[split] = ({m: finite(part[m]) for m in MODALITIES}, finite(labels).reshape(-1))
    return splits


def _read_csd(path):
    import h5py

    with reading(regular_file(path)), h5py.File(path, "r") as f:
        root = next(iter(f.keys()))
        return root, {segment: np.asarray(group["features"]) for segment, group in f[root]["data"].items()}


def _csd_roles(paths):
    """{role: path} with role in text / audio / vision / labels, recognised by file and sequence name."""
    roles = {}
    for path in paths:
        name = os.path.basename(path).lower()
        matches = [r for r, patterns in CSD_PATTERNS.items() if any(p in name for p in patterns)]
        for role in matches[:1]:
            if role in roles:
                raise ValueError(f"Two .csd files for '{role}': '{roles[role]}' and '{path}'; keep one.")
            roles[role] = path
    missing = [r for r in CSD_PATTERNS if r not in roles]
    if missing:
        raise ValueError(f"No .csd file recognised for {missing} among {[os.path.basename(p) for p in paths]}; "
                         f"names must contain one of {CSD_PATTERNS}.")
    return roles


def _video_splits(folder, videos, seed):
    folds_path = os.path.join(folder, "folds.json")
    if os.path.isfile(folds_path):
        with open(folds_path) as f:
            folds = json.load(f)
        return {split: set(folds[key]) for split, key in PICKLE_SPLITS.items()}
    order = np.random.default_rng([seed, 4]).permutation(sorted(videos))
    n_train, n_val = round(VIDEO_FRACTIONS[0] * len(order)), round(VIDEO_FRACTIONS[1] * len(order))
    return dict(zip(SPLITS, (set(order[:n_train]), set(order[n_train:n_train + n_val]),
                             set(order[n_train + n_val:]))))


def _from_csd(folder, max_len, seed):
    sequences = {role: _read_csd(path)[1] for role, path in _csd_roles(glob.glob(os.path.join(folder, "*.csd"))).items()}
    segments = sorted(set.intersection(*(set(s) for s in sequences.values())))
    video_of = {s: s.split("[")[0] for s in segments}
    membership = _video_splits(folder, set(video_of.values()), seed)
    splits = {}
    for split in SPLITS:
        chosen = [s for s in segments if video_of[s] in membership[split]]
        features = {m: np.stack([front_pad(sequences[m][s], max_len) for s in chosen]) if chosen else
                    np.zeros((0, max_len, 1), "float32") for m in MODALITIES}
        labels = np.array([finite(sequences["labels"][s]).reshape(-1)[0] for s in chosen], dtype="float32")
        splits[split] = features, labels
    return splits


@cache_watching(lambda data_dir, name, *_, **__: [os.path.join(data_dir, name)], maxsize=4)
def read_splits(data_dir, name, file=None, max_len=50, normalize=False, seed=0):
    """{split: ({modality: (n, T, D)}, labels (n,))} of the first format found (see the module docstring)."""
    folder = os.path.join(data_dir, name)
    found = _find(folder, name, file)
    if found is None:
        raise missing_files_error(INFOS[name], data_dir, [f"{name}/{MULT_FILES[name]}, {name}/aligned_50.pkl, "
                                                          f"{name}/unaligned_50.pkl or {name}/*.csd"])
    splits = _from_csd(folder, max_len, seed) if found.endswith(".csd") else _from_pickle(os.path.join(folder, found))
    if normalize:
        standardize(splits, MODALITIES)
    return splits


def binary_view(features, labels, binary):
    """The 2-class view of a split (see the module docstring): (features, int32 labels)."""
    if binary not in BINARY_VIEWS:
        raise ValueError(f"binary must be one of {list(BINARY_VIEWS)} (or None for the scores), got {binary!r}.")
    labels = np.asarray(labels).reshape(-1)
    if binary == "non0":
        keep = labels != 0
        features, labels = {m: x[keep] for m, x in features.items()}, labels[keep]
    return features, (labels >= 0).astype("int32") if binary == "has0" else (labels > 0).astype("int32")


def _describer(name):
    def describe(data_dir, file=None, max_len=50, normalize=False, seed=0, binary=None):
        splits = read_splits(os.path.abspath(data_dir), name, file, max_len, normalize, seed)
        if binary is not None:
            splits = {split: binary_view(*pair, binary) for split, pair in splits.items()}
        features = splits["train"][0]
        return _info(name, {m: features[m].shape[1:] for m in MODALITIES},
                     {split: len(labels) for split, (_, labels) in splits.items()}, binary)

    return describe


def _loader(name):
    def load_split(split, data_dir, seed=0, file=None, max_len=50, normalize=False, binary=None):
        """Loader of CMU-MOSI / MOSEI; see the module docstring for `file`, `max_len`, `normalize` and `binary`."""
        features, labels = read_splits(os.path.abspath(data_dir), name, file, max_len, normalize, seed)[split]
        if binary is not None:
            features, labels = binary_view(features, labels, binary)
        return array_source(features, labels)

    return load_split


for _name, _dataset_info in INFOS.items():
    register_dataset(_dataset_info, _loader(_name), _describer(_name))
