"""Reproduction report of Liu et al. (2018): Base / Add / Mul / MulMix on HIGGS and CIFAR, error and AUC.

Trains every variant for several seeds with `model.fit` and the papers' recipes (`multisensory.zoo.recipes`: on
CIFAR SGD with momentum 0.9 from 0.1, steps x0.1 at 50% and 75% of the epochs, batch 100, an L2 term 2e-4; on HIGGS
SGD with momentum 0.9 from 0.01, x0.99 per epoch, global-norm clipping 10, batch 128, an L2 term 2e-5; `--adam RATE`
trains with Adam instead, without a schedule, the L2 term kept), evaluates on the test split and prints one
JSON object: per dataset and variant, the mean and standard deviation over seeds of the test error and AUC, the
settings and the wall time. `--markdown` also prints the table.

Usage:
    MULTISENSORY_DATA=../shared/data python benchmarks/multiplicative_report.py --dataset higgs --seeds 3 --epochs 20
    MULTISENSORY_DATA=../shared/data python benchmarks/multiplicative_report.py --dataset cifar10 --depth 32 \\
        --seeds 1 --epochs 2 --train-size 5000
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from multisensory import datasets, zoo  # noqa: E402

PAPER = {"cifar100_resnet32_error": {"base": 30.3, "add": 29.4, "mul": 29.3, "mulmix": 27.8}}
VARIANTS = {"higgs": ("base:low_level", "base:high_level", "early", "add", "mul", "mulmix"),
            "cifar10": ("base", "add", "mul", "mulmix"), "cifar100": ("base", "add", "mul", "mulmix")}


def run(dataset, variant, seed, args):
    keras.utils.set_random_seed(seed)
    name, _, modality = variant.partition(":")
    if dataset == "higgs":
        model = zoo.create("higgs_mlp", dataset, variant=name, **({"modality": modality} if modality else {}))
        options = {}
    else:
        model = zoo.create("resnet_cifar", dataset, variant=name, depth=args.depth)
        options = {"validation_size": 5000}
    model.compile(optimizer=keras.optimizers.Adam(args.adam) if args.adam else "auto")
    batch_size = args.batch_size or model.recipe_batch_size
    train = datasets.load(dataset, "train", batch_size=batch_size, seed=seed, **options)
    if args.train_size:
        train = train.take(args.train_size // batch_size)
    model.fit(train, epochs=args.epochs, verbose=0, callbacks=[] if args.adam else model.recipe(args.epochs))
    metrics = model.evaluate(datasets.load(dataset, "test", batch_size=256, **options), return_dict=True, verbose=0)
    return metrics["error"], metrics["auc"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="higgs", choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, help="default: the recipe's (100 CIFAR, 128 HIGGS)")
    parser.add_argument("--adam", type=float, metavar="RATE", help="train with Adam at RATE instead of the recipe")
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=0, help="training examples per epoch (0: all)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    start, rows = time.time(), {}
    for variant in VARIANTS[args.dataset]:
        results = np.array([run(args.dataset, variant, seed, args) for seed in range(args.seeds)])
        rows[variant] = {"error_mean": float(results[:, 0].mean()), "error_std": float(results[:, 0].std()),
                         "auc_mean": float(results[:, 1].mean()), "auc_std": float(results[:, 1].std())}
    report = {"benchmark": "multiplicative_report", "dataset": args.dataset, "settings": vars(args),
              "test_size": sum(1 for _ in datasets.load(args.dataset, "test", batch_size=1).as_numpy_iterator())
              if args.dataset == "higgs" else 10_000,
              "results": rows, "paper": PAPER, "seconds": round(time.time() - start, 1)}
    print(json.dumps(report, indent=2))
    if args.markdown:
        print("\n| variant | error (%) | AUC |\n|---|---|---|")
        for variant, r in rows.items():
            print(f"| {variant} | {100 * r['error_mean']:.2f} ± {100 * r['error_std']:.2f} | "
                  f"{r['auc_mean']:.4f} ± {r['auc_std']:.4f} |")


if __name__ == "__main__":
    main()
