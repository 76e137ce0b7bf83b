"""Streaming from TFRecord shards against the in-memory path: peak memory and throughput of one training epoch.

Generates a synthetic two-modality folder dataset (two vectors of 512 float32: 4 KB per example, 10 classes) as
TFRecord shards at each `--sizes` (GB), trains `additive_fusion` one epoch on each in a fresh process, and reports
the process's peak RSS and training examples/s; the smallest size also as an in-memory `.npz` folder (the baseline,
in the same run), and the time of `multisensory dataset convert` from it per GB. Prints one JSON object:
`peak_rss_growth_mb` (largest minus smallest streamed size) and `streaming_vs_memory_throughput` are the targets'
numbers.

    python benchmarks/streaming.py                       # 0.05 and 0.2 GB: a couple of minutes on 2 cores
    python benchmarks/streaming.py --sizes 0.5,2,8       # the full measurement (disk: 2x the sizes)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

FEATURES = 512
BYTES_PER_EXAMPLE = 2 * FEATURES * 4
SEEDS = {"train": 0, "validation": 1, "test": 2}
TRAIN = """
import json, resource, sys
from multisensory.training import benchmark, runs
times = benchmark.EpochTimes()
runs.train("additive_fusion", sys.argv[1], sys.argv[2], epochs=1, batch_size=256, config={"width": 16},
           export=False, verbose=0, callbacks=[times], patience=None)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "examples_per_s": times.epochs[0]["examples_per_s"], "seconds": times.epochs[0]["seconds"]}))
"""


def spec(files, examples=None):
    body = {"name": "streaming", "modalities": [{"name": m, "shape": [FEATURES]} for m in ("a", "b")],
            "task": {"type": "classification", "num_classes": 10}, "files": files}
    if examples:
        body["examples"] = examples
    return body


def chunks(n, seed, size=4096):
    rng = np.random.default_rng(seed)
    for start in range(0, n, size):
        k = min(size, n - start)
        labels = rng.integers(0, 10, k)
        a = rng.normal(size=(k, FEATURES)).astype("float32")
        a[:, :10] += np.eye(10, dtype="float32")[labels] * 2  # a learnable signal
        yield a, rng.normal(size=(k, FEATURES)).astype("float32"), labels


def write_shards(folder, gb, shards=8):
    import tensorflow as tf

    os.makedirs(folder)
    counts = {}
    for split, fraction in (("train", 0.9), ("validation", 0.05), ("test", 0.05)):
        n = max(64, int(gb * 1e9 * fraction / BYTES_PER_EXAMPLE))
        writers = [tf.io.TFRecordWriter(os.path.join(folder, f"{split}-{k:03d}.tfrecord")) for k in range(shards)]
        written = 0
        for a, b, labels in chunks(n, SEEDS[split]):
            for i in range(len(labels)):
                feature = {"a": tf.train.Feature(float_list=tf.train.FloatList(value=a[i])),
                           "b": tf.train.Feature(float_list=tf.train.FloatList(value=b[i])),
                           "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[i])]))}
                writers[written * shards // n].write(
                    tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                written += 1
        for writer in writers:
            writer.close()
        counts[split] = n
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump(spec({s: f"{s}-*.tfrecord" for s in counts}, counts), f)
    return counts


def write_npz(folder, gb):
    os.makedirs(folder)
    for split, fraction in (("train", 0.9), ("validation", 0.05), ("test", 0.05)):
        n = max(64, int(gb * 1e9 * fraction / BYTES_PER_EXAMPLE))
        parts = list(chunks(n, SEEDS[split]))
        np.savez(os.path.join(folder, f"{split}.npz"), a=np.concatenate([p[0] for p in parts]),
                 b=np.concatenate([p[1] for p in parts]), label=np.concatenate([p[2] for p in parts]))
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump(spec({s: f"{s}.npz" for s in ("train", "validation", "test")}), f)


def train(folder, out):
    done = subprocess.run([sys.executable, "-c", TRAIN, folder, out], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.05,0.2", help="GB of each streamed dataset, comma-separated")
    parser.add_argument("--workdir", help="where the datasets are written (default: a temporary folder)")
    args = parser.parse_args()
    sizes = sorted(float(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        streamed = {}
        for gb in sizes:
            folder = os.path.join(work, f"shards-{gb}")
            write_shards(folder, gb)
            streamed[gb] = train(folder, os.path.join(work, f"run-{gb}"))
        memory_folder = os.path.join(work, "memory")
        write_npz(memory_folder, sizes[0])
        memory = train(memory_folder, os.path.join(work, "run-memory"))
        from multisensory.datasets import shards

        start = time.perf_counter()
        shards.write(memory_folder, os.path.join(work, "converted"), shards=8)
        convert_s = time.perf_counter() - start
    print(json.dumps({
        "sizes_gb": sizes, "streamed": {str(gb): r for gb, r in streamed.items()}, "memory": memory,
        "peak_rss_growth_mb": streamed[sizes[-1]]["peak_rss_mb"] - streamed[sizes[0]]["peak_rss_mb"],
        "streaming_vs_memory_throughput": streamed[sizes[0]]["examples_per_s"] / memory["examples_per_s"],
        "convert_s_per_gb": convert_s / sizes[0],
    }, indent=1))


if __name__ == "__main__":
    main()
