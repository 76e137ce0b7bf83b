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
    accuracy = studies.fusion_depth(out, data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                                    train_pairs=args.train_pairs, test_pairs=args.test_pairs, filters=args.filters,
                                    max_frames=args.max_frames, snrs=args.snrs or robustness.DEFAULT_SNRS,
                                    seed=args.seed, verbose=args.fit_verbosity)
    arguments.print_metrics(f"test accuracy at the training noise ({out}/study.json):", accuracy)
