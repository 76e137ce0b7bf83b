"""`multisensory compare`: a fusion model and one unimodal baseline per modality (see `runs.compare`)."""

from . import arguments

HELP = "train the fusion model and one unimodal baseline per modality"


def add_arguments(parser):
    arguments.add_train_args(parser)
    parser.add_argument("--json", action="store_true", help="print the test metrics of every run as one JSON object")


def run(args):
    from multisensory.training import runs

    if args.drop:
        raise ValueError("compare drops modalities itself; --drop is not accepted here.")
    out = args.out or f"runs/compare-{args.model}-{arguments.dataset_name(args.dataset)}"
    results = runs.compare(args.model, args.dataset, out, existing=arguments.existing(args, "reuse"),
                           **arguments.train_args(args))

    def table():
        names = list(next(iter(results.values())))
        print(f"\ntest metrics ({out}/compare.json)")
        print(f"{'run':>16s}" + "".join(f"{n:>10s}" for n in names))
        for name, metrics in results.items():
            print(f"{name:>16s}" + "".join(f"{metrics[n]:>10.4f}" for n in names))

    arguments.report(args, results, table)
