"""Small files in the public formats of CMU-MOSI / MOSEI and UR-FUNNY (random features, the real keys)."""

import json
import pickle

import h5py
import numpy as np

SPLIT_SIZES = {"train": 12, "valid": 4, "test": 6}


def write_mult_pickle(folder, name="mosi_data.pkl", dims=(300, 5, 20), length=50, seed=0):
    """MulT's layout: {"train" | "valid" | "test": {"text", "audio", "vision", "labels" (N, 1, 1), "id"}}."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in SPLIT_SIZES.items():
        part = {m: rng.normal(size=(n, length, d)).astype("float32") for m, d in zip(("text", "audio", "vision"), dims)}
        part["audio"][:, :3, 0] = -np.inf  # COVAREP's silent frames
        part["labels"] = rng.uniform(-3, 3, (n, 1, 1)).astype("float32")
        part["id"] = np.array([[f"{split}_video_{i}", str(i)] for i in range(n)], dtype=object)
        data[split] = part
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pickle.dumps(data))
    return data


def write_mmsa_pickle(folder, name="unaligned_50.pkl", lengths=(50, 20, 30), dims=(768, 74, 35), seed=1):
    """MMSA's layout: text (BERT features), audio, vision of their own lengths, regression_labels (N,)."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in SPLIT_SIZES.items():
        part = {m: rng.normal(size=(n, t, d)).astype("float32")
                for m, t, d in zip(("text", "audio", "vision"), lengths, dims)}
        part.update(regression_labels=rng.uniform(-3, 3, n).astype("float32"),
                    classification_labels=np.zeros(n, "float32"), raw_text=[f"words {i}" for i in range(n)],
                    audio_lengths=[lengths[1]] * n, vision_lengths=[lengths[2]] * n,
                    id=np.array([f"v{i}$_$0" for i in range(n)]))
        data[split] = part
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pickle.dumps(data, protocol=4))
    return data


def write_csd(folder, videos=10, segments=2, dims=(300, 74, 47), seed=2, folds=True):
    """CMU-MultimodalSDK computational sequences, word-aligned, with a folds.json over the videos."""
    rng = np.random.default_rng(seed)
    names = {"CMU_MOSI_TimestampedWordVectors": dims[0], "CMU_MOSI_COVAREP": dims[1],
             "CMU_MOSI_Visual_Facet_41": dims[2], "CMU_MOSI_Opinion_Labels": 1}
    folder.mkdir(parents=True, exist_ok=True)
    words = {f"vid{v}[{s}]": int(rng.integers(3, 70)) for v in range(videos) for s in range(segments)}
    written = {}
    for sequence, d in names.items():
        with h5py.File(folder / f"{sequence}.csd", "w") as f:
            data = f.create_group(sequence).create_group("data")
            for segment, n in words.items():
                rows = 1 if "Labels" in sequence else n
                features = rng.uniform(-3, 3, (rows, d)).astype("float32")
                written[sequence, segment] = features
                group = data.create_group(segment)
                group["features"] = features
                group["intervals"] = np.stack([np.arange(rows), np.arange(rows) + 1], 1).astype("float64")
            f[sequence].create_group("metadata")
    if folds:
        ids = [f"vid{v}" for v in range(videos)]
        (folder / "folds.json").write_text(json.dumps({"train": ids[:6], "valid": ids[6:8], "test": ids[8:]}))
    return written, words


def write_ur_funny(folder, n=(8, 3, 4), seed=3):
    """UR-FUNNY v2's six pickles."""
    rng = np.random.default_rng(seed)
    ids = {split: [f"{split}{i}" for i in range(k)] for split, k in zip(("train", "dev", "test"), n)}
    everyone = [i for split in ids.values() for i in split]
    vocabulary = rng.normal(size=(40, 300)).astype("float32")

    def lengths():
        return int(rng.integers(2, 6)), [int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 3)))]

    language, covarep, openface = {}, {}, {}
    for i in everyone:
        punch, context = lengths()
        language[i] = {"punchline_embedding_indexes": rng.integers(0, 40, punch).tolist(),
                       "context_embedding_indexes": [rng.integers(0, 40, c).tolist() for c in context],
                       "punchline_sentence": "a punchline", "context_sentences": ["a context"] * len(context),
                       "punchline_intervals": [], "context_intervals": []}
        covarep[i] = {"punchline_features": rng.normal(size=(punch, 81)).tolist(),
                      "context_features": [rng.normal(size=(c, 81)).tolist() for c in context]}
        openface[i] = {"punchline_features": rng.normal(size=(punch, 371)).tolist(),
                       "context_features": [rng.normal(size=(c, 371)).tolist() for c in context]}
    labels = {i: int(rng.integers(0, 2)) for i in everyone}
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in {"data_folds.pkl": ids, "language_sdk.pkl": language,
                          "word_embedding_list.pkl": vocabulary.tolist(), "covarep_features_sdk.pkl": covarep,
                          "openface_features_sdk.pkl": openface, "humor_label_sdk.pkl": labels}.items():
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
    return ids, language, covarep, labels, vocabulary
