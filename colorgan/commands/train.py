"""`train.py` / `colorgan train`: train a colorizer, or resume a run; its last lines say what to do with the run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colorgan.cli import (OneLineErrorParser, add_config_arguments, import_tensorflow_quietly, overrides_from_args,
                          setup_logging)
from colorgan.commands import invocation, quoted
from colorgan.config import config_from_overrides

PROG = "train.py"


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog=prog,
        description="Train a pix2pix colorizer (U-Net generator + PatchGAN discriminator). Each run writes "
                    "checkpoints/<run-name>/: config.json, history.csv, generator.keras, state/, samples/, logs/ (TensorBoard).")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a run from its last completed epoch with its saved config "
                             "(only --epochs may be given with it, to train longer)")
    parser.add_argument("--export", nargs="?", const="", metavar="DIR",
                        help="after training, also write a SavedModel for serving to DIR/1/ "
                             "(default DIR: exported/<run-name>)")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def next_steps(run_dir: Path, prog: str = PROG, interrupted: bool = False) -> str:
    """The last lines of training: where the run is and the commands to run on it, in the style of `prog`."""
    run_dir = Path(run_dir)
    run = quoted(run_dir)
    steps = []
    if interrupted:
        steps.append(("continue it", f"{invocation(prog, 'train')} --resume {run}"))
    if (run_dir / "generator.keras").exists():  # written at the end of the first epoch
        steps.append(("score it", f"{invocation(prog, 'evaluate')} --run {run}"))
        steps.append(("colorize photos", f"{invocation(prog, 'colorize')} PHOTO --run {run} -o colorized"))
    if (run_dir / "logs").is_dir():
        steps.append(("see its curves", f"tensorboard --logdir {quoted(run_dir / 'logs')}"))
    width = max((len(what) for what, _ in steps), default=0) + 1
    lines = [f"run directory: {run_dir}"] + [f"  {what + ':':<{width}}  {command}" for what, command in steps]
    return "\n".join(lines)


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    import_tensorflow_quietly()
    import colorgan

    overrides = overrides_from_args(args)
    try:
        if args.resume:
            extra = sorted(set(overrides) - {"epochs"})
            if extra:
                raise colorgan.ColorganError(
                    "--resume uses the run's saved config; only --epochs may be given with it (got "
                    + ", ".join("--" + k.replace("_", "-") for k in extra) + ")")
            run_dir = colorgan.resume(args.resume, epochs=overrides.get("epochs"))
        else:
            run_dir = colorgan.train(config_from_overrides(overrides))
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM, the progress saved: say how to go on
        if getattr(stop, "run_dir", None) is not None:
            print(next_steps(stop.run_dir, prog, interrupted=True), file=sys.stderr, flush=True)
        raise
    if args.export is not None:
        from colorgan.inference.export import export_saved_model
        target = export_saved_model(colorgan.Colorizer.load(run_dir), args.export or f"exported/{run_dir.name}")
        print(f"written: {target}")
    # On stderr after training's own log lines, so they stay last; stdout is flushed first to keep the order.
    sys.stdout.flush()
    print(next_steps(run_dir, prog), file=sys.stderr, flush=True)
    return 0
