"""`multisensory tune`: a KerasTuner study of a zoo model (see `multisensory.training.tuning`)."""

import os

from . import arguments

HELP = "a KerasTuner study of a zoo model (see multisensory.training.tuning)"


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="zoo model name (see `multisensory list`)")
    arguments.add_data_args(parser, with_dropout=False)
    parser.add_argument("--config", action="append", metavar="KEY=VALUE",
                        help="fixed model configuration, not searched (repeatable); synergy= and head= add their "
                             "spaces")
    parser.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--objective", help="e.g. val_auc (default: the task's main validation metric)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (hyperband: the most per trial)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--directory", default="studies")
    parser.add_argument("--project-name", help="default <model>-<dataset>")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming the study")
    parser.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                        help="tf.distribute strategy of every trial (several machines: chief/worker mode)")
    arguments.add_precision(parser)
    parser.add_argument("--summary", action="store_true", help="print the best trials")
    parser.add_argument("--json", action="store_true",
                        help="print the best trial's test metrics and hyperparameters as one JSON object")


def run(args):
    from multisensory.training import tuning

    project = args.project_name or f"{args.model}-{arguments.dataset_name(args.dataset)}"
    study, metrics = tuning.tune(args.model, args.dataset, directory=args.directory, project_name=project,
                                 tuner_name=args.tuner, max_trials=args.max_trials, objective_name=args.objective,
                                 epochs=args.epochs, batch_size=args.batch_size, data_dir=args.data_dir,
                                 seed=args.seed, config=arguments.parse_assignments(args.config),
                                 dataset_options=arguments.parse_assignments(args.dataset_option), noise=args.noise,
                                 drop=arguments.names(args.drop), strategy=args.strategy, overwrite=args.overwrite,
                                 verbose=args.fit_verbosity, precision=args.precision or "float32")
    if metrics is None:
        print("worker done: the chief writes the best model")
        return
    root = os.path.join(args.directory, project)
    ranking = tuning.ranking(study)

    def text():
        if args.summary:
            print(tuning.format_ranking(ranking))
        arguments.print_metrics(f"test metrics of the best trial ({os.path.join(root, 'best')}):", metrics)
        args.quiet or print(f"tensorboard --logdir {os.path.join(root, 'logs')}")

    arguments.report(args, {"test": metrics, "best_trial": ranking.best.trial_id,
                            "hyperparameters": ranking.best.hyperparameters.values,
                            "tied": [trial.trial_id for trial in ranking.tied]}, text)
