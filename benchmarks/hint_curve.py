"""How much colour hints help a --hints model: PSNR above the gray photo and colourfulness against the truth
with 0, 1, 2, 5, 10, 20 hints per photo (each the mean true colour of a small patch, the same points for every
run: evaluate.py --hints N), beside an automatic model; a plot and a grid to look at.

    python benchmarks/hint_curve.py --run checkpoints/HINT-RUN --baseline weights \\
        --data ../shared/data/imagenet-sample "../shared/data/landscape Images" --limit 300 --out reports/hints

Each set is the run's own evaluation split of it (the seeded validation split, as evaluate.py --data takes it).
Writes OUT/hint_curve.csv, OUT/hint_curve.png (PSNR - gray against the number of hints, the baseline as a line)
and OUT/hint_grid.png (gray | baseline | the hint model with 0, 3 and 10 hints | truth, first set).
"""
import argparse
import csv
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly, setup_logging  # noqa: E402

import_tensorflow_quietly()
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from colorgan.evaluation import scores  # noqa: E402
from colorgan.training.runs import load_run  # noqa: E402
from colorgan.viz import save_image_grid  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run trained with --hints")
    parser.add_argument("--baseline", default="weights", help="an automatic model to compare with (default: weights)")
    parser.add_argument("--data", nargs="+", required=True, help="photo sets (each scored apart)")
    parser.add_argument("--counts", default="0,1,2,5,10,20", help="hints per photo (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=300, help="photos per set, spread over it (default: 300)")
    parser.add_argument("--size", type=int, default=128, help="scoring size in px (default: 128)")
    parser.add_argument("--out", default="reports/hints", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    setup_logging()
    counts = [int(c) for c in args.counts.split(",")]
    run, baseline = load_run(args.run), load_run(args.baseline)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for data in args.data:
        images, _ = scores.eval_images(dataclasses.replace(run.config, data=data, more_data=[]))
        images = images.spread(args.limit) if args.limit else images
        auto = scores.evaluate_run(baseline, images, progress=False, size=args.size)
        gray, truth = auto["rows"][scores.GRAY], auto["rows"][scores.TRUTH]

        def row(result, name, hints):
            r = result["rows"][name]
            return {"data": Path(data).name, "model": name, "hints": hints, "images": result["images"],
                    "psnr_minus_gray": round(r["psnr"] - gray["psnr"], 3),
                    "colourfulness_vs_truth": round(r["colourfulness"] / truth["colourfulness"], 3)}

        rows.append(row(auto, baseline.name, 0))
        for n in counts:
            rows.append(row(scores.evaluate_run(run, images, progress=False, size=args.size, hints=n), run.name, n))
            print(rows[-1], flush=True)
        if data == args.data[0]:
            examples = next(iter(images.spread(8).examples(args.size).batch(8)))
            columns = {"gray": scores.colorize_examples(baseline, examples)[scores.GRAY],
                       f"{baseline.name} (automatic)": scores.colorize_examples(baseline, examples)["model"]}
            for n in (0, 3, 10):
                columns[f"{n} hints"] = scores.colorize_examples(run, examples, hints=n)["model"]
            columns["truth"] = scores.colorize_examples(run, examples)[scores.TRUTH]
            save_image_grid(out / "hint_grid.png", {k: v.numpy() for k, v in columns.items()},
                            title=f"{run.name}: hints drawn from the truth")
    with open(out / "hint_curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for data in dict.fromkeys(r["data"] for r in rows):
        points = [(r["hints"], r["psnr_minus_gray"]) for r in rows if r["data"] == data and r["model"] == run.name]
        line, = ax.plot(*zip(*points), marker="o", label=f"{data}: {run.name}")
        base = next(r for r in rows if r["data"] == data and r["model"] == baseline.name)["psnr_minus_gray"]
        ax.axhline(base, color=line.get_color(), linestyle="--", label=f"{data}: {baseline.name} (no hints)")
    ax.set_xlabel("hints per photo (from the truth)")
    ax.set_ylabel("PSNR - gray photo's (dB)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "hint_curve.png", dpi=120)
    print(f"written: {out}/hint_curve.csv, hint_curve.png, hint_grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
