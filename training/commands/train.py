"""`multisensory train`: one training run into a run folder (see `multisensory.training.runs.train`)."""

import os

from . import arguments

HELP = "train a model, evaluate it on the test split, export it"


def add_arguments(parser):
    arguments.add_train_args(parser, required=False)
    parser.add_argument("--from-trial", metavar="DIR",
                        help="a trial folder of a `tune` study (<directory>/<project>/trial_N): its model, data "
                             "settings, configuration, learning rate and batch size; flags given here take precedence")
    parser.add_argument("--json", action="store_true", help="print the test metrics as one JSON object")


def validate(args):
    if not args.from_trial and not (args.model and args.dataset):
        raise ValueError("train needs --model and --dataset (or --from-trial, a trial folder of a study).")
    arguments.train_args(args)


def run(args):
    from multisensory.training import runs

    kwargs = arguments.train_args(args)
    model, dataset, drop = args.model, args.dataset, arguments.names(args.drop)
    if args.from_trial:
        from multisensory.training import tuning

        trial = tuning.trial_settings(args.from_trial)
        model, dataset = model or trial.pop("model"), dataset or trial.pop("dataset")
        drop = drop if args.drop is not None else tuple(trial.pop("drop"))
        given = {"data_dir": args.data_dir, "noise": args.noise, "batch_size": args.batch_size,
                 "learning_rate": args.learning_rate, "precision": args.precision}
        for key, value in trial.items():
            if key in ("config", "dataset_options"):
                kwargs[key] = {**value, **kwargs[key]}
            elif key in given and given[key] is None:
                kwargs[key] = value
    out = args.out or f"runs/{model}-{arguments.dataset_name(dataset)}"
    metrics = runs.train(model, dataset, out, drop=drop, existing=arguments.existing(args, "refuse"), **kwargs)
    arguments.report(args, metrics, lambda: (
        arguments.print_metrics(f"test metrics ({out}/metrics.json):", metrics),
        args.quiet or print(f"tensorboard --logdir {os.path.join(out, 'logs')}")))
