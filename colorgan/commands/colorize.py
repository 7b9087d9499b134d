"""`colorize.py` / `colorgan colorize`: colorize photos, videos, folders and globs at full resolution."""
from __future__ import annotations

import argparse

from colorgan.cli import (OneLineErrorParser, cast_correction_type, import_tensorflow_quietly, setup_logging,
                          vividness_type)
from colorgan.errors import ColorganError
from colorgan.inference.video import DEFAULT_SMOOTHING, VIDEO_SUFFIXES, check_smoothing

PROG = "colorize.py"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=prog,
        description="Colorize images, videos, folders (recursive) and globs. Each output keeps its input's size, "
                    "aspect ratio, luminance and file name; RGBA keeps its alpha; a video keeps its frame rate "
                    f"and frame count ({', '.join(VIDEO_SUFFIXES)}).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns")
    parser.add_argument("-o", "--out", default="colorized",
                        help="output folder; for one photo or video also a file name, such as result.png "
                             "(default: %(default)s)")
    parser.add_argument("--run", help="a run directory from train.py (default: the shipped weights/)")
    parser.add_argument("--model", help="a generator .keras file instead of --run")
    parser.add_argument("--render-size", type=int,
                        help="longer side the network works at (default: the size it was trained at)")
    parser.add_argument("--vividness", type=vividness_type,
                        help="saturation: 1 is as trained, more is more saturated, less is closer to gray "
                             "(default: the model's, recorded in its config.json)")
    parser.add_argument("--cast-correction", type=cast_correction_type,
                        help="take away this share (0 to 1) of a yellow-olive tint laid over a whole photo, the "
                             "model's guess where it cannot tell the colours (default: the model's, in its "
                             "config.json)")
    parser.add_argument("--auto-levels", action="store_true",
                        help="faded old photos: the network sees the photo's contrast stretched (its 1st and 99th "
                             "percentile gray levels made black and white); the output keeps the photo's own "
                             "luminance, so only colour is added")
    parser.add_argument("--denoise", action="store_true",
                        help="old photos: remove film grain and scanner noise before colorizing (OpenCV's non-local "
                             "means, as strong as the photo's own noise); changes the photo's luminance, so off by "
                             "default: --side-by-side shows the original beside the result")
    parser.add_argument("--restore", action="store_true",
                        help="old photos: fill dust specks and thin scratches before colorizing (OpenCV's "
                             "inpainting of small spots far from their smooth surroundings); off by default")
    parser.add_argument("--hint", action="append", default=[], metavar="X,Y,COLOR",
                        help="a point of known colour, for a model trained with --hints (repeatable): X,Y in the "
                             "photo's pixels (integers) or as fractions of its width and height (0.5,0.25); COLOR "
                             "as #rrggbb or a CSS name; its luminance is ignored. Applies to every photo given, and to a "
                             "video's first frame until its first scene cut")
    parser.add_argument("--hints-file", metavar="JSON",
                        help='hints per photo: {"photo.jpg": ["120,80,red", {"x": 0.5, "y": 0.2, "color": "#2a6e3f"}]} '
                             '(names as given or file names); a video\'s by frame number, held to the next scene '
                             'cut: {"clip.mp4": {"0": [...], "480": [...]}}')
    parser.add_argument("--variants", type=variant_count_type, metavar="K",
                        help="photos: K plausible colourings of each (NAME_variant1 .. NAME_variantK), each with the "
                             "hints that made it as NAME_variantN.hints.json, a --hints-file to start from; needs a "
                             "--hints model (default: the shipped weights/hints/); --hint points are kept in every one")
    parser.add_argument("--seed", type=int,
                        help="--variants: the same seed gives the same variants (default: new ones each time)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also write NAME_side_by_side: the original in gray | colorized")
    parser.add_argument("--temporal-smoothing", type=smoothing_type, default=DEFAULT_SMOOTHING, metavar="A",
                        help="videos: each frame's colour is A times the running average of the frames before it "
                             "and 1 - A its own, restarting at scene cuts; 0 is off, below 1 "
                             "(default: %(default)s)")
    return parser


def smoothing_type(text: str) -> float:
    """argparse type of --temporal-smoothing: a number from 0 up to (not including) 1."""
    try:
        return check_smoothing(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    except ColorganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def variant_count_type(text: str) -> int:
    """argparse type of --variants: a whole number from 1 to MAX_VARIANTS."""
    from colorgan.inference.variants import check_variant_count
    try:
        return check_variant_count(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    except ColorganError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.render_size is not None and args.render_size < 1:
        parser.error("--render-size must be at least 1")
    if args.seed is not None and not args.variants:
        parser.error("--seed is for --variants")
    return args


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    if args.run and args.model:
        raise ColorganError("give --run or --model, not both")
    from colorgan.inference.files import colorize_jobs, find_jobs, output_target
    jobs = find_jobs(args.inputs)  # a mistyped name fails at once, not after TensorFlow and the model load
    jobs, out = output_target(jobs, args.out)
    hints = read_hints(args)
    import_tensorflow_quietly()
    from colorgan.inference.colorizer import Colorizer

    from colorgan.inference.variants import HINT_WEIGHTS
    model = args.model or args.run or (HINT_WEIGHTS if args.variants else None)
    colorizer = Colorizer.load(model, render_size=args.render_size, vividness=args.vividness,
                               auto_levels=args.auto_levels, denoise=args.denoise, restore=args.restore,
                               cast_correction=args.cast_correction)
    if hints and not colorizer.takes_hints:
        raise ColorganError("--hint/--hints-file: this model was trained without --hints; it cannot take colour hints")
    if args.variants and not colorizer.takes_hints:
        raise ColorganError("--variants: this model was trained without --hints (leave out --run/--model for the "
                            "shipped weights/hints/)")
    failed = colorize_jobs(colorizer, jobs, out, side_by_side=args.side_by_side,
                           temporal_smoothing=args.temporal_smoothing, hints=hints,
                           variants=args.variants or 0, seed=args.seed)
    return 1 if failed else 0


def read_hints(args: argparse.Namespace):
    """--hint and --hints-file -> None, or a function from an input file to its hints by frame, {frame: hints}
    (checked before loading). --hint is on every photo, and on a video's first frame."""
    from colorgan.inference.hints import hints_for, load_hints_file, parse_hints
    everywhere = parse_hints(args.hint)
    by_name = load_hints_file(args.hints_file) if args.hints_file else {}
    if not everywhere and not by_name:
        return None

    def file_hints(src):
        by_frame = dict(hints_for(src, by_name))
        if everywhere:
            by_frame[0] = everywhere + by_frame.get(0, [])
        return by_frame
    return file_hints
