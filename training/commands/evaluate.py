"""`multisensory evaluate`: a saved model's metrics on a split, or a robustness report (`--robustness`)."""

import os

from . import arguments

HELP = "test metrics of a saved model, or a robustness report"
ROBUSTNESS = ("snr-grid", "dropped", "corruptions", "masks")


def add_arguments(parser):
    parser.add_argument("--model-path", required=True, help="a .keras file written by `train`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=32, help="with --seed, fixes the noise drawn")
    arguments.add_data_args(parser, with_dropout=False)
    parser.add_argument("--robustness", choices=ROBUSTNESS,
                        help="a robustness evaluation, or mmlatch's average masks per class, written to --out")
    parser.add_argument("--snrs", type=arguments.floats, help="SNR grid values, e.g. inf,1,0.5,0.25 (inf: original)")
    parser.add_argument("--severities", type=arguments.floats, help="corruption severities, e.g. 0,0.5,1")
    parser.add_argument("--reference", help="corruptions.json of a reference model (effective robustness)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--out", help="a JSON file the metrics are written to; with --robustness, the output "
                                      "directory (default: beside the model)")


def run(args):
    if args.robustness:
        return _robustness(args)
    from multisensory.training import runs

    metrics = runs.evaluate(args.model_path, args.dataset, data_dir=args.data_dir, split=args.split,
                            batch_size=args.batch_size, noise=args.noise, drop=arguments.names(args.drop),
                            seed=args.seed, dataset_options=arguments.parse_assignments(args.dataset_option))
    arguments.report(args, metrics, lambda: arguments.print_metrics(f"{args.split} metrics of {args.model_path}:",
                                                                    metrics), path=args.out)


def _robustness(args):
    """`evaluate --robustness`: writes CSV/JSON and PNG files to --out and logs the plots to <out>/logs."""
    from multisensory.training import robustness, runs

    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model_path)), "robustness")
    os.makedirs(out, exist_ok=True)
    model = runs.load_model(args.model_path)
    common = dict(split=args.split, data_dir=args.data_dir, batch_size=args.batch_size, seed=args.seed,
                  dataset_options=arguments.parse_assignments(args.dataset_option))
    results = None
    if args.robustness == "snr-grid":
        results = robustness.snr_grid(model, args.dataset, snrs=args.snrs or robustness.DEFAULT_SNRS, **common)
        files = robustness.write_grid(results, os.path.join(out, "snr_grid"))
    elif args.robustness == "dropped":
        results = robustness.dropped_modalities(model, args.dataset, **common)
        files = (os.path.join(out, "dropped.json"),)
        runs.write_json(files[0], results)
    elif args.robustness == "masks":
        from multisensory.training import masks

        files = masks.write_masks(masks.average_masks(model, args.dataset, **common), out)
    else:
        reference = runs.read_json(args.reference) if args.reference else None
        results = robustness.corruption_curves(model, args.dataset, reference=reference,
                                               severities=args.severities or robustness.DEFAULT_SEVERITIES, **common)
        files = robustness.write_curves(results, os.path.join(out, "corruptions")) + (
            os.path.join(out, "corruptions.json"),)
        runs.write_json(files[-1], results)
    pngs = {os.path.basename(f)[:-4]: f for f in files if f.endswith(".png")}
    if pngs:
        robustness.log_images(os.path.join(out, "logs"), pngs)

    def text():
        if args.robustness == "dropped":
            for condition, metrics in results.items():
                arguments.print_metrics(f"dropped: {condition}", metrics)
        print("\n".join(files))

    arguments.report(args, {"files": list(files), "results": results}, text)
