"""`multisensory dataset check PATH`: every split of a dataset folder checked and summarised
(`multisensory.datasets.folder`); `multisensory dataset convert SRC DST --shards N`: any dataset written as sharded
TFRecords that train streamed, with bounded memory (`multisensory.datasets.shards`)."""

from . import arguments

HELP = "your own dataset folder: check it, or convert a dataset to streamed TFRecord shards"


def add_arguments(parser):
    actions = parser.add_subparsers(dest="dataset_command", required=True)
    check = actions.add_parser("check", help="check every split of a dataset folder and summarise it")
    check.add_argument("path", help="a folder holding dataset.json, or the spec file")
    convert = actions.add_parser("convert", help="write a dataset (a name or folder) as sharded TFRecords")
    convert.add_argument("source", help="dataset name (see `multisensory list`) or the path of a dataset folder")
    convert.add_argument("out", help="the new dataset folder")
    convert.add_argument("--shards", type=int, default=4, help="shards per split (default 4)")
    convert.add_argument("--data-dir", help="directory of the source's files (default $MULTISENSORY_DATA)")
    convert.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                         help="dataset option of the source, e.g. num_pairs=2000 (repeatable)")


def run(args):
    from multisensory.datasets import folder

    if args.dataset_command == "convert":
        from multisensory.datasets import shards

        spec = shards.write(args.source, args.out, shards=args.shards, data_dir=args.data_dir,
                            **arguments.parse_assignments(args.dataset_option))
        print(f"{args.out}: " + ", ".join(f"{split} {n} examples" for split, n in spec["examples"].items())
              + f" in {args.shards} shard(s) each")
        return
    if not folder.is_folder_dataset(args.path):
        raise FileNotFoundError(f"'{args.path}' is not a dataset folder: no {folder.SPEC} there.")
    print(folder.check(args.path))
    print("ok: every check passed")
