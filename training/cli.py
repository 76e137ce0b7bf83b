"""The `multisensory` command: list, train, evaluate (with robustness reports), compare, export, publish, zoo list,
grid-diff, study, dataset check.

Examples:
    multisensory list
    multisensory train --model additive_fusion --dataset av_mnist --data-dir ../shared/data \\
        --noise image=0.25,audio=0.5 --epochs 10 --out runs/av
    multisensory evaluate --model-path runs/av/model.keras --dataset av_mnist --noise audio=0.1
    multisensory evaluate --model-path runs/av/model.keras --dataset av_mnist --robustness snr-grid
    multisensory grid-diff runs/a/robustness/snr_grid.csv runs/b/robustness/snr_grid.csv --out runs/a_minus_b
    multisensory study fusion-depth --data-dir ../shared/data --filters 16 --max-frames 15 --train-pairs 4000 \
        --test-pairs 500 --epochs 3 --snrs inf,1,0.5,0.25,0.1 --out runs/fusion-depth
    multisensory study synergy-dropped --dataset synthetic_av --models tfn,lmf --epochs 5 --out runs/synergy
    multisensory compare --model additive_fusion --dataset synthetic_av --epochs 8 --out runs/demo
    multisensory export --model-path runs/av/model.keras --out serving --name av_additive
    multisensory publish --run runs/av --name av_mnist-additive --root pretrained
    multisensory zoo list --root pretrained
    multisensory serve --zoo pretrained --port 8501 --grpc-port 8500
    multisensory dataset check examples/sensors
    multisensory train --model additive_fusion --dataset examples/sensors --epochs 5 --out runs/sensors
"""

import argparse
import json
import os
import sys

def parse_setting(text, value_type=float):
    """Parses 'image=0.25,audio=0.5' into {"image": 0.25, "audio": 0.5}."""
    setting = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected modality=value[,modality=value...], got '{text}'")
        setting[key.strip()] = value_type(value)
    return setting


def parse_assignments(items):
    """Parses ['width=32', 'hidden=[64,32]', 'combine=concat'] into a dict, values read as JSON where they parse.

    A value that starts like JSON (a list, an object, a quoted string) must parse: `hidden=[64,` is an error, not
    the string "[64,".
    """
    config = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got '{item}'")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError as error:
            if value.lstrip()[:1] in ('[', '{', '"'):
                raise ValueError(f"'{item}': the value is not valid JSON ({error.msg} at character {error.pos}).") \
                    from None
            config[key] = value
    return config


def _add_data_args(parser, with_dropout):
    parser.add_argument("--dataset", required=True,
                        help="dataset name (see `multisensory list`) or the path of a dataset folder")
    parser.add_argument("--data-dir", help="directory of the dataset's files (default $MULTISENSORY_DATA)")
    parser.add_argument("--noise", type=parse_setting, help="white-noise SNR (power ratio) per modality, "
                        "e.g. image=0.25,audio=0.5")
    if with_dropout:
        parser.add_argument("--dropout", type=parse_setting, help="training modality dropout, e.g. audio=0.2")
    parser.add_argument("--drop", default="", help="modalities zeroed everywhere, comma-separated")
    parser.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                        help="dataset option, e.g. num_pairs=2000 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)


def _add_train_args(parser):
    parser.add_argument("--model", required=True, help="zoo model name (see `multisensory list`)")
    _add_data_args(parser, with_dropout=True)
    parser.add_argument("--config", action="append", metavar="KEY=VALUE",
                        help="model configuration, e.g. width=32 (repeatable)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--select", choices=("best", "last"), default="best",
                        help="the epoch the run reports, saves, exports and publishes: the best on the task's main "
                             "validation metric (default), or the last")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="stop after N epochs without improvement of that metric (0: run every epoch; default: "
                             "the model's recipe's, else 10)")
    parser.add_argument("--batch-size", type=int, help="the global batch; default: the model's recipe's, else 32")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                        help="tf.distribute strategy (multiworker: the cluster from TF_CONFIG)")
    parser.add_argument("--log-every", type=int, help="TensorBoard scalars every that many steps too")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="batches per call of the compiled training step: faster for small models, the same "
                             "weights; callbacks and the progress bar see every that many batches")
    parser.add_argument("--out", help="output directory (default runs/<model>-<dataset>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="replace a run already in --out (by default a finished run there is refused)")
    existing.add_argument("--resume", action="store_true",
                          help="resume the interrupted run in --out, and fail if there is none (a rerun of the same "
                               "command resumes anyway)")


def build_parser():
    parser = argparse.ArgumentParser(prog="multisensory", description="Multimodal fusion model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list models and datasets")
    _add_train_args(sub.add_parser("train", help="train a model, evaluate it on the test split, export it"))
    _add_train_args(sub.add_parser("compare", help="train the fusion model and one unimodal baseline per modality"))
    evaluate = sub.add_parser("evaluate", help="test metrics of a saved model")
    evaluate.add_argument("--model-path", required=True, help="a .keras file written by `train`")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--batch-size", type=int, default=32, help="with --seed, fixes the noise drawn")
    _add_data_args(evaluate, with_dropout=False)
    evaluate.add_argument("--robustness", choices=ROBUSTNESS,
                          help="a robustness evaluation, or mmlatch's average masks per class, written to --out")
    evaluate.add_argument("--snrs", type=_floats, help="SNR grid values, e.g. inf,1,0.5,0.25 (inf: original)")
    evaluate.add_argument("--severities", type=_floats, help="corruption severities, e.g. 0,0.5,1")
    evaluate.add_argument("--reference", help="corruptions.json of a reference model (effective robustness)")
    evaluate.add_argument("--out", help="output directory of --robustness (default: beside the model)")
    study = sub.add_parser("study", help="a paper's study end to end (see multisensory.training.studies)")
    study.add_argument("name", choices=("fusion-depth", "synergy-dropped"))
    study.add_argument("--data-dir", help="directory of the dataset's files (default $MULTISENSORY_DATA)")
    study.add_argument("--out", help="output directory (default runs/<name>)")
    study.add_argument("--epochs", type=int, default=10)
    study.add_argument("--batch-size", type=int, default=32)
    study.add_argument("--train-pairs", type=int, help="pairs per split for training (default: the paper's 87,516)")
    study.add_argument("--test-pairs", type=int, help="test pairs of the SNR grids (default 10,939)")
    study.add_argument("--filters", type=int, default=64)
    study.add_argument("--max-frames", type=int, help="last audio frames kept (default: all 90)")
    study.add_argument("--snrs", type=_floats, help="grid SNRs, e.g. inf,1,0.5,0.25 (default: 10 values)")
    study.add_argument("--seed", type=int, default=0)
    study.add_argument("--dataset", help="synergy-dropped: the dataset (default mosi)", default="mosi")
    study.add_argument("--models", type=_drop, help="synergy-dropped: zoo models (default ef_lstm,tfn,lmf,mfn)")
    study.add_argument("--synergy", action="append", default=[], metavar="KEY=VALUE",
                       help="synergy-dropped: a SynergyConfig setting, e.g. divergence=kl (repeatable)")
    tune = sub.add_parser("tune", help="a KerasTuner study of a zoo model (see multisensory.training.tuning)")
    tune.add_argument("--model", required=True, help="zoo model name (see `multisensory list`)")
    _add_data_args(tune, with_dropout=False)
    tune.add_argument("--config", action="append", metavar="KEY=VALUE",
                      help="fixed model configuration, not searched (repeatable); synergy= and head= add their spaces")
    tune.add_argument("--tuner", choices=("random", "bayesian", "hyperband"), default="random")
    tune.add_argument("--max-trials", type=int, default=10)
    tune.add_argument("--objective", help="e.g. val_auc (default: the task's main validation metric)")
    tune.add_argument("--epochs", type=int, default=5, help="epochs per trial (hyperband: the most per trial)")
    tune.add_argument("--batch-size", type=int, default=32)
    tune.add_argument("--directory", default="studies")
    tune.add_argument("--project-name", help="default <model>-<dataset>")
    tune.add_argument("--overwrite", action="store_true", help="start over instead of resuming the study")
    tune.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                      help="tf.distribute strategy of every trial (several machines: chief/worker mode)")
    tune.add_argument("--summary", action="store_true", help="print the best trials")
    grid_diff = sub.add_parser("grid-diff", help="difference heatmap of two SNR grids (a minus b)")
    grid_diff.add_argument("a", help="snr_grid.csv of the first model")
    grid_diff.add_argument("b", help="snr_grid.csv of the second model")
    grid_diff.add_argument("--out", required=True, help="output path without extension")
    dataset = sub.add_parser("dataset", help="your own dataset folder (see multisensory.datasets.folder)")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    check = dataset_commands.add_parser("check", help="check every split of a dataset folder and summarise it")
    check.add_argument("path", help="a folder holding dataset.json, or the spec file")
    export = sub.add_parser("export", help="export a saved model as a SavedModel in TF-Serving layout")
    export.add_argument("--model-path", required=True, help="a .keras file written by `train`")
    export.add_argument("--out", required=True, help="TF-Serving base path")
    export.add_argument("--name", help="model folder name (default: the model's name)")
    export.add_argument("--version", type=int, help="version folder (default: the next integer)")
    publish = sub.add_parser("publish", help="publish a finished run as a preset of the pretrained zoo")
    publish.add_argument("--run", required=True, help="a run folder written by `train`")
    publish.add_argument("--name", required=True, help="the preset's name")
    publish.add_argument("--root", help="preset root: a folder or a tf.io.gfile URI (default $MULTISENSORY_ZOO)")
    publish.add_argument("--data-dir", help="directory of the dataset's files, for the robustness card "
                                            "(default $MULTISENSORY_DATA)")
    publish.add_argument("--snrs", type=_floats, help="SNRs of the card's grid (default inf,1,0.25)")
    publish.add_argument("--version", type=int, help="version folder (default: the next integer)")
    serve = sub.add_parser("serve", help="serve exports with TF-Serving's REST and gRPC APIs")
    serve.add_argument("--zoo", required=True, help="a preset root, a model's base path or a models.config")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8501, help="REST port (TF-Serving's default 8501)")
    serve.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (TF-Serving's default 8500)")
    serve.add_argument("--no-batching", action="store_true", help="run every request on its own")
    serve.add_argument("--batch-timeout-ms", type=float, default=2.0,
                       help="the longest a request waits to be batched with others")
    serve.add_argument("--max-batch-size", type=int, default=32)
    serve.add_argument("--poll-seconds", type=float, default=2.0, help="how often new versions are looked for")
    serve.add_argument("--max-body-mb", type=float, default=64.0, help="the largest request accepted")
    serve.add_argument("--request-timeout", type=float, default=30.0,
                       help="seconds a request body may take to arrive")
    serve.add_argument("--intra-op-threads", type=int, default=1,
                       help="threads one TensorFlow op may use (TF-Serving's --tensorflow_intra_op_parallelism; 0: "
                            "TensorFlow's choice, the cores). 1 is measured faster for the zoo's exports")
    serve.add_argument("--inter-op-threads", type=int, default=0,
                       help="ops run at once (TF-Serving's --tensorflow_inter_op_parallelism; 0: the cores)")
    zoo_parser = sub.add_parser("zoo", help="the pretrained zoo")
    zoo_sub = zoo_parser.add_subparsers(dest="zoo_command", required=True)
    zoo_list = zoo_sub.add_parser("list", help="the presets under a root, with their metrics and robustness cards")
    zoo_list.add_argument("--root", help="preset root (default $MULTISENSORY_ZOO)")
    zoo_list.add_argument("--markdown", action="store_true", help="print a Markdown table")
    return parser


ROBUSTNESS = ("snr-grid", "dropped", "corruptions", "masks")


def _floats(text):
    return tuple(float(v) for v in text.split(","))


def _drop(text):
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _existing(args, default):
    return "overwrite" if args.overwrite else "resume" if args.resume else default


def _train_args(args):
    if args.patience is not None and args.patience < 0:
        raise ValueError(f"--patience must be 0 (run every epoch) or a positive number of epochs, got {args.patience}.")
    patience = "recipe" if args.patience is None else (args.patience or None)
    return dict(data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size, strategy=args.strategy,
                select=args.select, patience=patience,
                log_every=args.log_every or "epoch", steps_per_execution=args.steps_per_execution, noise=args.noise,
                dropout=args.dropout, seed=args.seed, config=parse_assignments(args.config),
                dataset_options=parse_assignments(args.dataset_option))


def _dataset_name(dataset):
    """A registered dataset's name, or a dataset folder's (its spec's name), for default output folders."""
    from multisensory import datasets

    return datasets.info(dataset).name


def _print_metrics(title, metrics):
    print(title)
    width = max([12] + [len(name) for name in metrics])
    for name, value in metrics.items():
        print(f"  {name:>{width}s}  {value:.4f}")


def _robustness(args):
    """`evaluate --robustness`: writes CSV/JSON and PNG files to --out and logs the plots to <out>/logs."""
    from multisensory.training import robustness, runs

    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model_path)), "robustness")
    os.makedirs(out, exist_ok=True)
    model = runs.load_model(args.model_path)
    common = dict(split=args.split, data_dir=args.data_dir, batch_size=args.batch_size, seed=args.seed,
                  dataset_options=parse_assignments(args.dataset_option))
    if args.robustness == "snr-grid":
        grid = robustness.snr_grid(model, args.dataset, snrs=args.snrs or robustness.DEFAULT_SNRS, **common)
        files = robustness.write_grid(grid, os.path.join(out, "snr_grid"))
    elif args.robustness == "dropped":
        results = robustness.dropped_modalities(model, args.dataset, **common)
        files = (os.path.join(out, "dropped.json"),)
        runs.write_json(files[0], results)
        for condition, metrics in results.items():
            _print_metrics(f"dropped: {condition}", metrics)
    elif args.robustness == "masks":
        from multisensory.training import masks

        files = masks.write_masks(masks.average_masks(model, args.dataset, **common), out)
    else:
        reference = runs.read_json(args.reference) if args.reference else None
        result = robustness.corruption_curves(model, args.dataset, reference=reference,
                                              severities=args.severities or robustness.DEFAULT_SEVERITIES, **common)
        files = robustness.write_curves(result, os.path.join(out, "corruptions")) + (
            os.path.join(out, "corruptions.json"),)
        runs.write_json(files[-1], result)
    pngs = {os.path.basename(f)[:-4]: f for f in files if f.endswith(".png")}
    if pngs:
        robustness.log_images(os.path.join(out, "logs"), pngs)
    print("\n".join(files))


def _tune(args):
    from multisensory.training import tuning

    project = args.project_name or f"{args.model}-{_dataset_name(args.dataset)}"
    study, metrics = tuning.tune(args.model, args.dataset, directory=args.directory, project_name=project,
                                 tuner_name=args.tuner, max_trials=args.max_trials, objective_name=args.objective,
                                 epochs=args.epochs, batch_size=args.batch_size, data_dir=args.data_dir,
                                 seed=args.seed, config=parse_assignments(args.config),
                                 dataset_options=parse_assignments(args.dataset_option), noise=args.noise,
                                 drop=_drop(args.drop), strategy=args.strategy, overwrite=args.overwrite)
    if metrics is None:
        print("worker done: the chief writes the best model")
        return
    if args.summary:
        study.results_summary(num_trials=3)
    _print_metrics(f"test metrics of the best trial ({os.path.join(args.directory, project, 'best')}):", metrics)
    print(f"tensorboard --logdir {os.path.join(args.directory, project, 'logs')}")


def _publish(args):
    from multisensory.exports import presets
    from multisensory.training import publishing

    root = presets.resolve_root(args.root)
    print(publishing.publish_run(args.run, args.name, root, data_dir=args.data_dir,
                                 snrs=args.snrs or publishing.CARD_SNRS, version=args.version))


def _serve(args):
    import asyncio

    import tensorflow as tf

    from multisensory.exports.batching import BatchingOptions
    from multisensory.exports.server import ServerOptions, serve

    if args.max_batch_size < 1 or args.batch_timeout_ms < 0 or args.poll_seconds <= 0 or args.max_body_mb <= 0:
        raise ValueError("--max-batch-size must be >= 1, --batch-timeout-ms >= 0, --poll-seconds and --max-body-mb "
                         "> 0.")
    if args.intra_op_threads < 0 or args.inter_op_threads < 0:
        raise ValueError("--intra-op-threads and --inter-op-threads must be >= 0 (0: TensorFlow's choice).")
    try:  # settings of the process's TensorFlow runtime, which take only before it runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    except RuntimeError:
        raise ValueError("TensorFlow has run in this process already, so its threads are set: start the server in a "
                         "process of its own (`multisensory serve ...`).") from None
    options = ServerOptions(host=args.host, port=args.port, grpc_port=args.grpc_port, poll_seconds=args.poll_seconds,
                            max_body_bytes=int(args.max_body_mb * (1 << 20)), request_timeout_s=args.request_timeout,
                            batching=BatchingOptions(not args.no_batching, args.batch_timeout_ms,
                                                     args.max_batch_size))
    asyncio.run(serve(args.zoo, options))


def _zoo_list(args):
    from multisensory.exports import presets
    from multisensory.training import publishing

    rows = publishing.preset_rows(presets.resolve_root(args.root))
    print(publishing.format_rows(rows, markdown=args.markdown) if rows else "no preset under this root")


def main(argv=None):
    """Runs a command; every anticipated failure (bad arguments or data, I/O such as a full disk, TensorFlow's
    input errors) ends with one line on stderr and exit status 2, never a traceback."""
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    from multisensory import datasets, zoo
    from multisensory.exports.requests import op_error_message
    from multisensory.training import runs

    # ImportError: a dependency missing from the environment (e.g. an installation without the project's
    # requirements) is named in one line too
    anticipated = (ValueError, TypeError, OSError, EOFError, ImportError, tf.errors.OpError)

    try:
        if args.command == "list":
            print("models:   " + ", ".join(zoo.list_models()))
            print("datasets: " + ", ".join(datasets.list_datasets()))
        elif args.command == "train":
            out = args.out or f"runs/{args.model}-{_dataset_name(args.dataset)}"
            metrics = runs.train(args.model, args.dataset, out, drop=_drop(args.drop),
                                 existing=_existing(args, "refuse"), **_train_args(args))
            _print_metrics(f"test metrics ({out}/metrics.json):", metrics)
            print(f"tensorboard --logdir {os.path.join(out, 'logs')}")
        elif args.command == "compare":
            if args.drop:
                raise ValueError("compare drops modalities itself; --drop is not accepted here.")
            out = args.out or f"runs/compare-{args.model}-{_dataset_name(args.dataset)}"
            results = runs.compare(args.model, args.dataset, out, existing=_existing(args, "reuse"),
                                   **_train_args(args))
            names = list(next(iter(results.values())))
            print(f"\ntest metrics ({out}/compare.json)")
            print(f"{'run':>16s}" + "".join(f"{n:>10s}" for n in names))
            for run, metrics in results.items():
                print(f"{run:>16s}" + "".join(f"{metrics[n]:>10.4f}" for n in names))
        elif args.command == "evaluate" and args.robustness:
            _robustness(args)
        elif args.command == "tune":
            _tune(args)
        elif args.command == "study" and args.name == "synergy-dropped":
            from multisensory.training import studies

            out = args.out or "runs/synergy-dropped"
            studies.synergy_dropped(out, args.dataset, models=args.models or studies.SYNERGY_MODELS,
                                    synergy=parse_assignments(args.synergy), data_dir=args.data_dir,
                                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                    command="multisensory " + " ".join(argv if argv is not None else sys.argv[1:]))
            with open(os.path.join(out, "report.md")) as f:
                print(f.read())
        elif args.command == "study":
            from multisensory.training import robustness, studies

            out = args.out or "runs/fusion-depth"
            accuracy = studies.fusion_depth(out, data_dir=args.data_dir, epochs=args.epochs,
                                            batch_size=args.batch_size, train_pairs=args.train_pairs,
                                            test_pairs=args.test_pairs, filters=args.filters,
                                            max_frames=args.max_frames, snrs=args.snrs or robustness.DEFAULT_SNRS,
                                            seed=args.seed)
            _print_metrics(f"test accuracy at the training noise ({out}/study.json):", accuracy)
        elif args.command == "grid-diff":
            from multisensory.training import robustness

            if os.path.abspath(f"{args.out}.csv") in (os.path.abspath(args.a), os.path.abspath(args.b)):
                raise ValueError(f"--out {args.out} would overwrite an input ({args.out}.csv); choose another path.")
            grid = robustness.grid_difference(robustness.read_grid(args.a), robustness.read_grid(args.b))
            print("\n".join(robustness.write_grid(grid, args.out)))
        elif args.command == "evaluate":
            metrics = runs.evaluate(args.model_path, args.dataset, data_dir=args.data_dir, split=args.split,
                                    batch_size=args.batch_size, noise=args.noise, drop=_drop(args.drop),
                                    seed=args.seed, dataset_options=parse_assignments(args.dataset_option))
            _print_metrics(f"{args.split} metrics of {args.model_path}:", metrics)
        elif args.command == "dataset":
            from multisensory.datasets import folder

            if not folder.is_folder_dataset(args.path):
                raise FileNotFoundError(f"'{args.path}' is not a dataset folder: no {folder.SPEC} there.")
            print(folder.check(args.path))
            print("ok: every check passed")
        elif args.command == "publish":
            _publish(args)
        elif args.command == "serve":
            _serve(args)
        elif args.command == "zoo":
            _zoo_list(args)
        elif args.command == "export":
            from multisensory.exports import export_saved_model

            model = runs.load_model(args.model_path)
            print(export_saved_model(model, args.out, model_name=args.name, version=args.version))
    except anticipated as error:
        message = op_error_message(error) if isinstance(error, tf.errors.OpError) else str(error)
        print(f"error: {type(error).__name__}: {message}" if isinstance(error, OSError) and not isinstance(
            error, FileNotFoundError) else f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last complete epoch", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
