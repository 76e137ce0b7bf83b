"""`multisensory dataset check PATH`: every split of a dataset folder checked and summarised
(see `multisensory.datasets.folder`)."""

HELP = "your own dataset folder (see multisensory.datasets.folder)"


def add_arguments(parser):
    actions = parser.add_subparsers(dest="dataset_command", required=True)
    check = actions.add_parser("check", help="check every split of a dataset folder and summarise it")
    check.add_argument("path", help="a folder holding dataset.json, or the spec file")


def run(args):
    from multisensory.datasets import folder

    if not folder.is_folder_dataset(args.path):
        raise FileNotFoundError(f"'{args.path}' is not a dataset folder: no {folder.SPEC} there.")
    print(folder.check(args.path))
    print("ok: every check passed")
