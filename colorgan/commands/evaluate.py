"""`evaluate.py` / `colorgan evaluate`: score runs against the gray baseline, or compare runs on the same images."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from colorgan.cli import OneLineErrorParser, import_tensorflow_quietly, setup_logging
from colorgan.commands import invocation
from colorgan.config import check_vividness
from colorgan.errors import ColorganError
from colorgan.inference.hints import MAX_HINTS

log = logging.getLogger("colorgan")

PROG = "evaluate.py"


def parse_args(argv=None, prog: str = PROG) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog=prog,
        description="Score runs against the gray baseline (PSNR, SSIM, ab AuC, colourfulness, and with the "
                    "CIFAR-10 classifier: top-1 accuracy and a Frechet distance in its features). Writes "
                    "metrics.json, loss_curves.png and samples.png under --out.")
    parser.add_argument("--run", nargs="+", metavar="RUN_DIR",
                        help="run directories to evaluate (default: the newest run in --checkpoint-dir)")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                        help="compare runs on the same images: one table, one grid, overlaid loss curves, "
                             "written to reports/compare/ (or --out)")
    parser.add_argument("--data", help="evaluate on this data instead of the run's own (its test split, else its "
                                       "seeded validation split); a comma list scores each apart. Default: the "
                                       "run's data, each source of a --more-data mix apart")
    parser.add_argument("--limit", type=int, default=0,
                        help="evaluate at most N images, spread evenly over the split (default: all)")
    parser.add_argument("--out", help="output folder (default: reports/<run-name>/, or reports/compare/)")
    parser.add_argument("--classifier", help="classifier folder for the semantic metrics "
                                             "(default: checkpoints/classifier-cifar10 if it exists)")
    parser.add_argument("--checkpoint-dir", default="checkpoints", help="where runs are (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=8, help="images in the sample grids (default: %(default)s)")
    parser.add_argument("--vividness", metavar="V[,V...]",
                        help="colorize at these vividness values (1: as trained, more: more saturated); several "
                             "values trace the frontier of PSNR over the gray photo against colourfulness, written "
                             "to frontier.png and frontier.csv; the table shows the first (default: each run's own)")
    parser.add_argument("--size", type=int, help="score every run at this many px (default: each run's training "
                                                 "size); each network still works at its own size, its colour "
                                                 "resized to this one as colorize.py does a photo, so runs trained "
                                                 "at different sizes share one gray baseline")
    parser.add_argument("--degrade", type=strength_type, default=0.0, metavar="S",
                        help="score on old-photo versions of the photos: the network sees each one damaged at "
                             "strength S in [0, 1] (colorgan.data.degrade.old_photo, seeded by the photo's index: the "
                             "same damage for every run); the output keeps the clean photo's L, so the score is "
                             "the colour's, beside the clean gray photo's (default: 0, clean)")
    parser.add_argument("--hints", type=hint_count_type, default=0, metavar="N",
                        help="runs trained with --hints see N colour hints per photo, drawn from its true colours "
                             "(each the mean of a small patch, the same points for every run); other runs see none "
                             "(default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def bounded_type(parse, low, high, what: str):
    """An argparse type: the text parsed by `parse` (int or float), within [low, high]."""
    def check(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not in [{low:g}, {high:g}]")
        return value
    return check


strength_type = bounded_type(float, 0.0, 1.0, "a number")  # --degrade
hint_count_type = bounded_type(int, 0, MAX_HINTS, "a whole number")  # --hints


def parse_vividness(text: str) -> list[float]:
    values = [v for v in text.split(",") if v.strip()]
    if not values:
        raise ColorganError(f"--vividness: {text!r} is not a comma list of numbers")
    try:
        return [check_vividness(v) for v in values]
    except ColorganError as e:
        raise ColorganError(f"--vividness: {e}") from None


def main(argv=None, prog: str = PROG) -> int:
    args = parse_args(argv, prog)
    setup_logging()
    for run_dir in (args.compare or []) + (args.run or []):
        if not Path(run_dir).is_dir():  # a mistyped run fails at once, not after TensorFlow loads
            raise ColorganError(f"{run_dir}: no such run directory")
    import_tensorflow_quietly()
    from colorgan.evaluation.scores import load_classifier_if_any, print_table
    from colorgan.training.runs import find_runs, load_run

    if args.limit < 0 or args.samples < 1:
        raise ColorganError("--limit must be 0 or more and --samples at least 1")
    if args.size is not None and args.size < 1:
        raise ColorganError("--size must be at least 1")
    vividness = parse_vividness(args.vividness) if args.vividness else None
    if args.run and args.compare:
        raise ColorganError("give either --run or --compare")
    run_dirs = args.compare or args.run
    if not run_dirs:
        found = find_runs(args.checkpoint_dir)
        if not found:
            raise ColorganError(f"no runs in {args.checkpoint_dir}/ (train one with {invocation(prog, 'train')}, "
                                f"or give --run)")
        run_dirs = [found[-1]]
    runs = [load_run(d) for d in run_dirs]
    classifier = load_classifier_if_any(args.classifier)
    sets = evaluation_sets(runs[0].config, args.data)
    per_source = []
    for set_name, data in sets:
        if len(sets) > 1:
            print(f"\n== {set_name} ==")
        results = score(args, runs, data, set_name if len(sets) > 1 else None, classifier, vividness)
        per_source += [{"source": set_name, **r} for r in results]
    if len(sets) > 1:  # one table of every source, beside the reports of each
        roots = [report_root(args, runs)] if args.compare else [report_root(args, runs, run) for run in runs]
        for root, run in zip(roots, [None] if args.compare else runs):
            rows = [r for r in per_source if run is None or r["run"] == str(run.directory)]
            header, body = write_source_table(root, rows)
            print(f"\n{'every run' if run is None else run.name} on each source apart ({len(sets)}):")
            print_table(header, body)
            print(f"written: {root}/sources.md, sources.csv, sources.json")
    return 0


def report_root(args, runs, run=None) -> Path:
    """Where reports go: --out (a folder per run when there are several), else reports/<run-name>/, or
    reports/compare/ with --compare (run None)."""
    if run is None:
        return Path(args.out or "reports/compare")
    if args.out:
        return Path(args.out) if len(runs) == 1 else Path(args.out) / run.name
    return Path("reports") / run.name


def evaluation_sets(cfg, data: str | None) -> list[tuple[str, str | None]]:
    """(name, --data to score on or None for the run's own) for each set scored apart: the sources of --data's
    comma list, else each source of the run's --more-data mix (its validation split, as in training), else the
    run's own data."""
    from colorgan.config import split_weight

    if data:
        names = [d.strip() for d in data.split(",") if d.strip()]
        if not names:
            raise ColorganError(f"--data: {data!r} names no data")
    elif cfg.more_data:
        names = list(dict.fromkeys([cfg.data] + [split_weight(e)[0] for e in cfg.more_data]))
    else:
        return [(Path(cfg.data).name, None)]
    named = [(Path(n).name.replace(" ", "-") or n, n) for n in names]
    taken: dict[str, int] = {}
    for i, (name, n) in enumerate(named):  # two sources of one folder name (a/photos, b/photos) kept apart
        taken[name] = taken.get(name, 0) + 1
        if taken[name] > 1:
            named[i] = (f"{name}-{taken[name]}", n)
    return named


def write_source_table(out: Path, results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """sources.md / .csv / .json: one row per source and run: images, PSNR and SSIM beside the gray photo's,
    colourfulness beside the truth's."""
    import json

    from colorgan.atomic import atomic_write_text
    from colorgan.evaluation.scores import GRAY, TRUTH, markdown_table, write_csv

    header = ["source", "run", "images", "psnr", "psnr - gray", "ssim", "ssim gray", "colourfulness",
              "/ truth"]
    body = []
    for r in results:
        name = Path(r["run"]).name
        model, gray, truth = r["rows"][name], r["rows"][GRAY], r["rows"][TRUTH]
        body.append([r["source"], name, str(r["images"]), f"{model['psnr']:.2f}", f"{model['psnr'] - gray['psnr']:+.2f}",
                     f"{model['ssim']:.3f}", f"{gray['ssim']:.3f}", f"{model['colourfulness']:.1f}",
                     f"{model['colourfulness'] / max(truth['colourfulness'], 1e-9):.2f}"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sources.md", markdown_table(header, body))
    write_csv(out / "sources.csv", header, body)
    atomic_write_text(out / "sources.json", json.dumps(results, indent=2) + "\n")
    return header, body


def score(args, runs, data: str | None, set_name: str | None, classifier, vividness) -> list[dict]:
    """Score `runs` on `data` (None: each run's own evaluation split) and write the reports (report_root, in a
    folder `set_name` when several sets are scored): one per run, or with --compare one comparison; returns
    the results."""
    import dataclasses

    from colorgan.evaluation.scores import (eval_images, evaluate_run, metric_table, print_frontier, print_table,
                                            save_compare_grid, save_frontier, save_loss_curves, save_report,
                                            write_comparison, write_frontier_csv)

    def eval_config(run):
        return run.config if not data else dataclasses.replace(run.config, data=data, classes=[], more_data=[])

    def split_of(cfg):  # what decides a run's evaluation photos
        return cfg.data, cfg.classes, cfg.val_split, cfg.data_split_seed

    results, first_images = [], None
    for run in runs:
        if args.compare and first_images is not None:  # every run on the first run's photos
            if split_of(eval_config(run)) != split_of(eval_config(runs[0])):
                log.warning("%s: scored on %s's evaluation photos, not its own split, so it may have trained on "
                            "some of them (--split-seed keeps the split while --seed changes)", run.name, runs[0].name)
            images = first_images
        else:
            images, description = eval_images(eval_config(run))
        first_images = first_images if first_images is not None else images
        result = evaluate_run(run, images, args.limit, classifier=classifier, progress=not args.no_progress,
                              vividness=vividness, size=args.size, degrade=args.degrade, hints=args.hints)
        result["data"] = description + (f"; the network saw them as old photos (--degrade {args.degrade:g})"
                                        if args.degrade else "") + \
            (f"; {args.hints} colour hints per photo from its truth" if result["hints"] else "")
        results.append(result)
        if not args.compare:
            out = report_root(args, runs, run) / (set_name or "")
            save_report(result, out, run, images, args.samples)
            print(f"\n{run.name}: {result['images']} images of {description}, {result['image_size']} px")
            print_table(*metric_table(result["rows"]))
            written = "metrics.json, loss_curves.png, samples.png"
            if "frontier" in result:
                save_frontier(out / "frontier.png", [result])
                write_frontier_csv(out / "frontier.csv", [result])
                print_frontier(result)
                written += ", frontier.png, frontier.csv"
            print(f"written: {out}/{written}")

    if args.compare:
        out = report_root(args, runs) / (set_name or "")
        header, body = write_comparison(out, results)
        save_compare_grid(out / "samples.png", runs, first_images, args.samples, args.size)  # listed once, above
        save_loss_curves(out / "loss_curves.png", [r.directory for r in runs])
        if "frontier" in results[0]:
            save_frontier(out / "frontier.png", results)
            write_frontier_csv(out / "frontier.csv", results)
        sizes = {r.config.image_size for r in runs}
        if len(sizes) > 1 and not args.size:
            print(f"note: the runs were trained at different sizes {sorted(sizes)}; each is scored at its own "
                  f"(--size N scores all at N)")
        print(f"\n{results[0]['images']} images of {results[0]['data']}")
        print_table(header, body)
        print(f"written: {out}/table.md, table.csv, metrics.json, samples.png, loss_curves.png"
              + (", frontier.png, frontier.csv" if "frontier" in results[0] else ""))
    return results
