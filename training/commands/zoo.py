"""`multisensory zoo list`: the presets under a root, with their metrics and robustness cards."""

HELP = "the pretrained zoo"


def add_arguments(parser):
    actions = parser.add_subparsers(dest="zoo_command", required=True)
    listing = actions.add_parser("list", help="the presets under a root, with their metrics and robustness cards")
    listing.add_argument("--root", help="preset root (default $MULTISENSORY_ZOO)")
    listing.add_argument("--markdown", action="store_true", help="print a Markdown table")
    listing.add_argument("--json", action="store_true", help="print the rows as one JSON list")


def run(args):
    import json

    from multisensory.exports import presets
    from multisensory.training import atomic, publishing

    rows = publishing.preset_rows(presets.resolve_root(args.root))
    if args.json:
        print(json.dumps(atomic.strict(rows), allow_nan=False), file=args.stdout)
    else:
        print(publishing.format_rows(rows, markdown=args.markdown) if rows else "no preset under this root")
