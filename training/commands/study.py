"""`multisensory study`: a paper's study end to end (see `multisensory.training.studies`)."""

import os

from . import arguments

HELP = "a paper's study end to end (see multisensory.training.studies)"


def add_arguments(parser):
    parser.add_argument("name", choices=("fusion-depth", "synergy-dropped"))
    parser.add_argument("--data-dir", help="directory of the dataset's files (default $MULTISENSORY_DATA)")
    parser.add_argument("--out", help="output directory (default runs/<name>)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-pairs", type=int, help="pairs per split for training (default: the paper's 87,516)")
    parser.add_argument("--test-pairs", type=int, help="test pairs of the SNR grids (default 10,939)")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--max-frames", type=int, help="last audio frames kept (default: all 90)")
    parser.add_argument("--snrs", type=arguments.floats, help="grid SNRs, e.g. inf,1,0.5,0.25 (default: 10 values)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=arguments.integers, metavar="S,S,...",
                        help="fusion-depth: run the study once per seed (<out>/seed-<s>/) and summarise them "
                             "(summary.json: mean +- std, paired t over seeds)")
    parser.add_argument("--dataset", help="synergy-dropped: the dataset (default mosi)", default="mosi")
    parser.add_argument("--models", type=arguments.names,
                        help="synergy-dropped: zoo models (default ef_lstm,tfn,lmf,mfn)")
    parser.add_argument("--synergy", action="append", default=[], metavar="KEY=VALUE",
                        help="synergy-dropped: a SynergyConfig setting, e.g. divergence=kl (repeatable)")


def run(args):
    from multisensory.training import robustness, studies

    out = args.out or f"runs/{args.name}"
    if args.name == "synergy-dropped":
        studies.synergy_dropped(out, args.dataset, models=args.models or studies.SYNERGY_MODELS,
                                synergy=arguments.parse_assignments(args.synergy), data_dir=args.data_dir,
                                epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                command="multisensory " + " ".join(args.argv), verbose=args.fit_verbosity)
        with open(os.path.join(out, "report.md")) as f:
            print(f.read())
        return
    settings = dict(data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                    train_pairs=args.train_pairs, test_pairs=args.test_pairs, filters=args.filters,
                    max_frames=args.max_frames, snrs=args.snrs or robustness.DEFAULT_SNRS, verbose=args.fit_verbosity)
    if not args.seeds:
        accuracy = studies.fusion_depth(out, seed=args.seed, **settings)
        arguments.print_metrics(f"test accuracy at the training noise ({out}/study.json):", accuracy)
        return
    summary = studies.fusion_depth_seeds(out, args.seeds, **settings)
    print(f"over seeds {summary['seeds']} ({out}/summary.json): test accuracy at the training noise, mean accuracy "
          "over the grid (mean +- std)")
    for fusion in studies.FUSIONS:
        accuracy, grid = summary["accuracy"][fusion], summary["grid_mean"][fusion]
        print(f"  {fusion:>8s}: {accuracy['mean']:.4f} +- {accuracy['std']:.4f}, {grid['mean']:.4f} +- "
              f"{grid['std']:.4f}")
    for name, comparison in summary["comparisons"].items():
        print(f"  {name}: " + "; ".join(f"{what} {test['difference']:+.4f} (p = {test['p']:.3g}, {test['verdict']})"
                                       for what, test in comparison.items() if what != "cells"))
