"""`multisensory export`: a saved model as a SavedModel in TF-Serving's layout (`multisensory.exports`)."""

HELP = "export a saved model as a SavedModel in TF-Serving layout"


def add_arguments(parser):
    parser.add_argument("--model-path", required=True, help="a .keras file written by `train`")
    parser.add_argument("--out", required=True, help="TF-Serving base path")
    parser.add_argument("--name", help="model folder name (default: the model's name)")
    parser.add_argument("--version", type=int, help="version folder (default: the next integer)")


def run(args):
    from multisensory.exports import export_saved_model
    from multisensory.training import runs

    model = runs.load_model(args.model_path)
    print(export_saved_model(model, args.out, model_name=args.name, version=args.version))
