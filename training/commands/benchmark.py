"""`multisensory benchmark`: every model x seed on one dataset, with statistics, robustness and cost in one report
(see `multisensory.training.benchmark`)."""

from . import arguments

HELP = "compare models over seeds: statistics, robustness and cost in one report"


def add_arguments(parser):
    parser.add_argument("--dataset", required=True,
                        help="dataset name (see `multisensory list`) or the path of a dataset folder")
    parser.add_argument("--models", required=True, type=arguments.names,
                        help="zoo models, comma-separated, each a name or label=model (several configurations "
                             "of one model); the first is the default baseline")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model: 0, 1, ... (default 3)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--config", action="append", metavar="MODEL:KEY=VALUE",
                        help="a model's configuration by its label, e.g. tfn:width=16 (repeatable)")
    parser.add_argument("--tune-trials", type=int, default=0,
                        help="a KerasTuner study of that many trials per model first; the seeds run at its best")
    parser.add_argument("--baseline", help="the model every other is compared with (default: the first)")
    parser.add_argument("--data-dir", help="directory of the dataset's files (default $MULTISENSORY_DATA)")
    parser.add_argument("--noise", type=arguments.parse_setting, help="white-noise SNR per modality in every split")
    parser.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                        help="dataset option, e.g. num_pairs=2000 (repeatable)")
    parser.add_argument("--batch-size", type=int, help="default: each model's recipe's, else 32")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="early stopping (0: run every epoch; default: each model's recipe's, else 10)")
    parser.add_argument("--worker", default="0/1", metavar="I/N",
                        help="take every N-th run from the I-th (processes or machines sharing --out)")
    arguments.add_precision(parser)
    parser.add_argument("--overwrite", action="store_true", help="train every run again")
    parser.add_argument("--out", required=True, help="the benchmark's folder")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def validate(args):
    if args.seeds < 1 or args.epochs < 1 or args.tune_trials < 0:
        raise ValueError("--seeds and --epochs must be at least 1, --tune-trials at least 0.")
    labels = [entry.partition("=")[0].strip() for entry in args.models]  # `benchmark.entries` checks them
    if len(set(labels)) != len(labels):
        raise ValueError(f"--models: labels do not repeat, got {list(args.models)}.")
    index, _, count = args.worker.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f"--worker must be I/N with 0 <= I < N, got '{args.worker}'.")
    configs = {}
    for item in args.config or ():
        model, sep, assignment = item.partition(":")
        if not sep or model not in labels:
            raise ValueError(f"--config takes MODEL:KEY=VALUE with MODEL one of {labels}, got '{item}'.")
        configs.setdefault(model, []).append(assignment)
    args.configs = {m: arguments.parse_assignments(items) for m, items in configs.items()}
    if args.patience is not None and args.patience < 0:
        raise ValueError(f"--patience must be 0 or a positive number of epochs, got {args.patience}.")


def run(args):
    from multisensory.training import benchmark

    index, _, count = args.worker.partition("/")
    patience = "recipe" if args.patience is None else (args.patience or None)
    result = benchmark.benchmark(args.dataset, args.models, args.out, seeds=range(args.seeds), epochs=args.epochs,
                                 config=args.configs, tune_trials=args.tune_trials, noise=args.noise,
                                 baseline=args.baseline, data_dir=args.data_dir,
                                 dataset_options=arguments.parse_assignments(args.dataset_option),
                                 batch_size=args.batch_size, patience=patience, worker=(int(index), int(count)),
                                 overwrite=args.overwrite, verbose=args.fit_verbosity,
                                 precision=args.precision or "float32")
    arguments.report(args, result, lambda: print(benchmark.format_report(result)))
