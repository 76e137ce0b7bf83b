"""`multisensory grid-diff`: the difference heatmap of two SNR grids (a minus b)."""

import os

HELP = "difference heatmap of two SNR grids (a minus b)"


def add_arguments(parser):
    parser.add_argument("a", help="snr_grid.csv of the first model")
    parser.add_argument("b", help="snr_grid.csv of the second model")
    parser.add_argument("--out", required=True, help="output path without extension")


def run(args):
    from multisensory.training import robustness

    inputs = {os.path.realpath(args.a), os.path.realpath(args.b)}
    written = [f"{args.out}{extension}" for extension in (".csv", ".png")]
    for path in written:
        if os.path.realpath(path) in inputs:
            raise ValueError(f"--out {args.out} would overwrite an input ({path} is {os.path.realpath(path)}); "
                             "choose another path.")
    grid = robustness.grid_difference(robustness.read_grid(args.a), robustness.read_grid(args.b))
    print("\n".join(robustness.write_grid(grid, args.out)))
