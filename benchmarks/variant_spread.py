"""Several colourings of each photo from a --hints model (Colorizer.colorize_variants): how far apart they are and
how plausible each is, beside the single automatic output, on each set's validation photos.

    python benchmarks/variant_spread.py --run weights/hints --baseline weights \\
        --data ../shared/data/imagenet-sample "../shared/data/landscape Images" --limit 100 --out reports/variants

Per set, averaged over its photos (each at --size px, variants seeded by the photo's index):
  spread          the mean pairwise ab distance between the K variants (Lab units, per pixel)
  variant         PSNR of a variant minus the gray photo's, averaged over the K; its colourfulness / the truth's
  best-of-K       PSNR of the variant nearest the truth, minus the gray photo's
  automatic       the hint model without hints, and the --baseline model, the same way
Writes OUT/variant_spread.csv and OUT/variant_grid.png (gray | automatic | K variants | truth, first set).
"""
import argparse
import csv
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly, setup_logging  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from colorgan.color.lab import rgb_to_lab  # noqa: E402
from colorgan.evaluation import metrics, scores  # noqa: E402
from colorgan.inference.colorizer import Colorizer  # noqa: E402
from colorgan.progress import progress_bar  # noqa: E402
from colorgan.viz import save_image_grid  # noqa: E402


def _psnr(images, truth):
    return tf.minimum(metrics.psnr(tf.constant(images, tf.float32) / 255.0, truth), scores.PSNR_CAP_DB).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="weights/hints", help="a model trained with --hints (default: %(default)s)")
    parser.add_argument("--baseline", default="weights", help="an automatic model to compare with (default: %(default)s)")
    parser.add_argument("--data", nargs="+", required=True, help="photo sets (each scored apart)")
    parser.add_argument("--variants", type=int, default=8, help="variants per photo (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=100, help="photos per set, spread over it (default: %(default)s)")
    parser.add_argument("--size", type=int, default=128, help="scoring size in px (default: %(default)s)")
    parser.add_argument("--out", default="reports/variants", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    setup_logging()
    hinted, baseline = Colorizer.load(args.run), Colorizer.load(args.baseline)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, grid = [], []
    for data in args.data:
        from colorgan.config import Config
        images, _ = scores.eval_images(dataclasses.replace(Config.load(Path(args.run) / "config.json"), data=data,
                                                           more_data=[]))
        images = images.spread(args.limit) if args.limit else images
        acc = {key: [] for key in ("gray", "auto", "baseline", "variant", "best", "spread",
                                   "cf_truth", "cf_auto", "cf_baseline", "cf_variant")}
        for i, example in enumerate(progress_bar(images.examples(args.size), total=len(images), desc=Path(data).name)):
            rgb8 = example.numpy()[..., :3]
            truth = tf.constant(rgb8[None], tf.float32) / 255.0
            gray8 = np.repeat(example.numpy()[..., 3:], 3, axis=-1)
            variants = hinted.colorize_variants(rgb8, args.variants, seed=i)
            stack = np.stack([v.image for v in variants])
            auto, base = hinted.colorize(rgb8), baseline.colorize(rgb8)
            acc["gray"].append(_psnr(gray8[None], truth)[0])
            acc["auto"].append(_psnr(auto[None], truth)[0])
            acc["baseline"].append(_psnr(base[None], truth)[0])
            psnrs = _psnr(stack, tf.repeat(truth, len(stack), axis=0))
            acc["variant"].append(psnrs.mean())
            acc["best"].append(psnrs.max())
            ab = rgb_to_lab(tf.constant(stack, tf.float32) / 255.0).numpy()[..., 1:]
            pairs = [np.linalg.norm(ab[a] - ab[b], axis=-1).mean() for a in range(len(ab)) for b in range(a + 1, len(ab))]
            acc["spread"].append(np.mean(pairs))
            for key, imgs in (("cf_truth", rgb8[None]), ("cf_auto", auto[None]), ("cf_baseline", base[None]),
                              ("cf_variant", stack)):
                acc[key].append(metrics.colourfulness(tf.constant(imgs, tf.float32) / 255.0).numpy().mean())
            if data == args.data[0] and i < 6:
                grid.append([gray8, base, auto, *[v.image for v in variants[:4]], rgb8])
        mean = {key: float(np.mean(values)) for key, values in acc.items()}
        row = {"data": Path(data).name, "photos": len(acc["gray"]), "variants": args.variants,
               "spread_ab": round(mean["spread"], 2)}
        for name in ("baseline", "auto", "variant", "best"):
            row[f"{name}_psnr_minus_gray"] = round(mean[name] - mean["gray"], 2)
        for name in ("baseline", "auto", "variant"):
            row[f"{name}_colourfulness_vs_truth"] = round(mean[f"cf_{name}"] / mean["cf_truth"], 2)
        rows.append(row)
        print(row)
    with open(out / "variant_spread.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    names = ["gray", "automatic", "no hints", "variant 1", "variant 2", "variant 3", "variant 4", "truth"]
    save_image_grid(out / "variant_grid.png", {name: np.stack([row[c] for row in grid]) / 255.0
                                               for c, name in enumerate(names)})
    print(f"wrote {out / 'variant_spread.csv'} and {out / 'variant_grid.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
