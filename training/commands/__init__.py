"""The `multisensory` command line: one module per command, each with its `HELP`, `add_arguments(parser)`,
`run(args)` and optionally `validate(args)` (checks that need no TensorFlow), listed in `COMMANDS`; `main` parses,
imports TensorFlow (only once a command runs: `--help` and argument errors answer at once), dispatches, and turns
every anticipated failure into one line on stderr and exit status 2.

Examples:
    multisensory list
    multisensory train --model additive_fusion --dataset av_mnist --data-dir ../shared/data \\
        --noise image=0.25,audio=0.5 --epochs 10 --out runs/av
    multisensory train --from-trial studies/additive_fusion-synthetic_av/trial_03 --epochs 10 --out runs/tuned
    multisensory evaluate --model-path runs/av/model.keras --dataset av_mnist --noise audio=0.1 --json
    multisensory evaluate --model-path runs/av/model.keras --dataset av_mnist --robustness snr-grid
    multisensory grid-diff runs/a/robustness/snr_grid.csv runs/b/robustness/snr_grid.csv --out runs/a_minus_b
    multisensory study fusion-depth --data-dir ../shared/data --filters 16 --max-frames 15 --train-pairs 4000 \\
        --test-pairs 500 --epochs 3 --snrs inf,1,0.5,0.25,0.1 --out runs/fusion-depth
    multisensory study synergy-dropped --dataset synthetic_av --models tfn,lmf --epochs 5 --out runs/synergy
    multisensory compare --model additive_fusion --dataset synthetic_av --epochs 8 --out runs/demo
    multisensory benchmark --dataset synthetic_av --models late_fusion,additive_fusion,tfn --seeds 5 --epochs 5 \
        --out runs/bench
    multisensory tune --model additive_fusion --dataset synthetic_av --max-trials 10 --summary
    multisensory export --model-path runs/av/model.keras --out serving --name av_additive
    multisensory publish --run runs/av --name av_mnist-additive --root pretrained
    multisensory zoo list --root pretrained
    multisensory serve --zoo pretrained --port 8501 --grpc-port 8500
    multisensory dataset check examples/sensors
"""

import argparse
import contextlib
import importlib
import sys

from . import output
from .arguments import add_output_args

# command -> module of this package; a new command is a new module and a line here
COMMANDS = {
    "list": "listing", "train": "train", "compare": "compare", "evaluate": "evaluate", "tune": "tune",
    "study": "study", "grid-diff": "grid_diff", "dataset": "dataset", "export": "export", "publish": "publish",
    "serve": "serve", "zoo": "zoo", "benchmark": "benchmark", "data-service": "data_service",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="multisensory", description="Multimodal fusion model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __name__)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        add_output_args(command)
        command.set_defaults(command_module=module)  # not `run`: `publish --run` is an argument
    return parser


def main(argv=None):
    """Runs a command; every anticipated failure (bad arguments or data, I/O such as a full disk, TensorFlow's
    input errors) ends with one line on stderr and exit status 2, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv, args.fit_verbosity = argv, output.fit_verbosity(args)
    try:
        if hasattr(args.command_module, "validate"):  # argument errors answer before TensorFlow loads
            args.command_module.validate(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        tf = output.import_tensorflow(args)
    except ImportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from multisensory.exports.server.requests import op_error_message

    # ImportError: a dependency missing from the environment (e.g. an installation without the project's
    # requirements) is named in one line too
    anticipated = (ValueError, TypeError, OSError, EOFError, ImportError, tf.errors.OpError)
    try:
        if not getattr(args, "json", False):
            return args.command_module.run(args) or 0
        # --json: stdout holds the one JSON object; what the command prints on the way (progress) goes to stderr
        args.stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return args.command_module.run(args) or 0
    except anticipated as error:
        message = op_error_message(error) if isinstance(error, tf.errors.OpError) else str(error)
        print(f"error: {type(error).__name__}: {message}" if isinstance(error, OSError) and not isinstance(
            error, FileNotFoundError) else f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last complete epoch", file=sys.stderr)
        return 130
