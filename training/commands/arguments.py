"""Argument types and argument groups the commands share, and the way they print results (text or JSON)."""

import argparse
import json
import os


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


def floats(text):
    """Parses 'inf,1,0.5' into (inf, 1.0, 0.5)."""
    return tuple(float(v) for v in text.split(","))


def integers(text):
    """Parses '0,1,2' into (0, 1, 2)."""
    return tuple(int(v) for v in text.split(","))


def names(text):
    """Parses 'audio, image' into ("audio", "image")."""
    return tuple(m.strip() for m in (text or "").split(",") if m.strip())


def add_output_args(parser):
    """--quiet and --verbose, which every command takes (see `multisensory.training.commands.output`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress output: only the results and errors")
    group.add_argument("-v", "--verbose", action="store_true",
                       help="a progress bar per step, and every line TensorFlow logs")


def add_data_args(parser, with_dropout, required=True):
    parser.add_argument("--dataset", required=required,
                        help="dataset name (see `multisensory list`) or the path of a dataset folder")
    parser.add_argument("--data-dir", help="directory of the dataset's files (default $MULTISENSORY_DATA)")
    parser.add_argument("--noise", type=parse_setting, help="white-noise SNR (power ratio) per modality, "
                        "e.g. image=0.25,audio=0.5")
    if with_dropout:
        parser.add_argument("--dropout", type=parse_setting, help="training modality dropout, e.g. audio=0.2")
    parser.add_argument("--drop", default=None, help="modalities zeroed everywhere, comma-separated")
    parser.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                        help="dataset option, e.g. num_pairs=2000 (repeatable)")
    parser.add_argument("--seed", type=int, default=0)


def add_train_args(parser, required=True):
    """The arguments of a training run (`train`, `compare`)."""
    parser.add_argument("--model", required=required, help="zoo model name (see `multisensory list`)")
    add_data_args(parser, with_dropout=True, required=required)
    parser.add_argument("--config", action="append", metavar="KEY=VALUE",
                        help="model configuration, e.g. width=32 (repeatable)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, metavar="RATE",
                        help="the optimiser's initial learning rate (a recipe's schedule scales from it); default: "
                             "the model's recipe's, else the model's default")
    parser.add_argument("--select", choices=("best", "last"), default="best",
                        help="the epoch the run reports, saves, exports and publishes: the best on the task's main "
                             "validation metric (default), or the last")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="stop after N epochs without improvement of that metric (0: run every epoch; default: "
                             "the model's recipe's, else 10)")
    parser.add_argument("--batch-size", type=int, help="the global batch; default: the model's recipe's, else 32")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                        help="tf.distribute strategy (multiworker: the cluster from TF_CONFIG)")
    add_precision(parser)
    parser.add_argument("--log-every", type=int, help="TensorBoard scalars every that many steps too")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="batches per call of the compiled training step: faster for small models, the same "
                             "weights; callbacks and the progress bar see every that many batches")
    parser.add_argument("--data-service", metavar="grpc://HOST:PORT",
                        help="run the training split's input pipeline on a tf.data service (`multisensory "
                             "data-service`)")
    parser.add_argument("--out", help="output directory (default runs/<model>-<dataset>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true",
                          help="replace a run already in --out (by default a finished run there is refused)")
    existing.add_argument("--resume", action="store_true",
                          help="resume the interrupted run in --out, and fail if there is none (a rerun of the same "
                               "command resumes anyway)")


def add_precision(parser):
    parser.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                        help="the dtype policy the model's layers compute in (default float32; mixed_float16: GPUs, "
                             "with loss scaling; mixed_bfloat16: recent GPUs and CPUs with bfloat16 instructions); "
                             "the saved model and its exports take and return float32")


def existing(args, default):
    """The `existing=` of `runs.train` that --overwrite and --resume ask for."""
    return "overwrite" if args.overwrite else "resume" if args.resume else default


def train_args(args):
    """The keyword arguments of `runs.train` shared by `train` and `compare`."""
    if args.patience is not None and args.patience < 0:
        raise ValueError(f"--patience must be 0 (run every epoch) or a positive number of epochs, got {args.patience}.")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be a positive number, got {args.learning_rate}.")
    patience = "recipe" if args.patience is None else (args.patience or None)
    return dict(data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size, strategy=args.strategy,
                select=args.select, patience=patience, learning_rate=args.learning_rate,
                log_every=args.log_every or "epoch", steps_per_execution=args.steps_per_execution, noise=args.noise,
                dropout=args.dropout, seed=args.seed, config=parse_assignments(args.config),
                dataset_options=parse_assignments(args.dataset_option), verbose=args.fit_verbosity,
                data_service=args.data_service, precision=args.precision or "float32")


def dataset_name(dataset):
    """A registered dataset's name, or a dataset folder's (its spec's name), for default output folders."""
    from multisensory import datasets

    return datasets.info(dataset).name


def print_metrics(title, metrics):
    print(title)
    width = max([12] + [len(name) for name in metrics])
    for name, value in metrics.items():
        print(f"  {name:>{width}s}  {value:.4f}")


def report(args, result, text, path=None):
    """A command's result: `text()` prints it for people, or with --json one strict JSON object on stdout; `path`
    (a file) also gets that JSON, written atomically."""
    from multisensory.training import atomic

    if args.json:
        print(json.dumps(atomic.strict(result), allow_nan=False), file=getattr(args, "stdout", None))
    else:
        text()
    if path:
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_json(path, result)
