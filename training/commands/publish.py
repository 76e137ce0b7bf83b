"""`multisensory publish`: a finished run as a preset of the pretrained zoo (`multisensory.training.publishing`)."""

from . import arguments

HELP = "publish a finished run as a preset of the pretrained zoo"


def add_arguments(parser):
    parser.add_argument("--run", required=True, help="a run folder written by `train` (or a study's best/)")
    parser.add_argument("--name", required=True, help="the preset's name")
    parser.add_argument("--root", help="preset root: a folder or a tf.io.gfile URI (default $MULTISENSORY_ZOO)")
    parser.add_argument("--data-dir", help="directory of the dataset's files, for the robustness card "
                                           "(default $MULTISENSORY_DATA)")
    parser.add_argument("--snrs", type=arguments.floats, help="SNRs of the card's grid (default inf,1,0.25)")
    parser.add_argument("--version", type=int, help="version folder (default: the next integer)")


def run(args):
    from multisensory.exports import presets
    from multisensory.training import publishing

    root = presets.resolve_root(args.root)
    print(publishing.publish_run(args.run, args.name, root, data_dir=args.data_dir,
                                 snrs=args.snrs or publishing.CARD_SNRS, version=args.version))
