"""`multisensory list`: the registered models and datasets."""

HELP = "list models and datasets"


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print them as one JSON object")


def run(args):
    import json

    from multisensory import datasets, zoo

    if args.json:
        print(json.dumps({"models": list(zoo.list_models()), "datasets": list(datasets.list_datasets())}),
              file=args.stdout)
        return
    print("models:   " + ", ".join(zoo.list_models()))
    print("datasets: " + ", ".join(datasets.list_datasets()))
