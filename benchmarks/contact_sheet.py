"""A contact sheet of real photos as each model colorizes them, and the colour each adds: for looking, not scoring.

    python benchmarks/contact_sheet.py ../shared/data/old-photos --models weights checkpoints/RUN \
        --count 24 --out reports/old_photos_sheet.png

Photos are taken spread over the folder (sorted by name), colorized at full resolution with `Colorizer` (as
`colorize.py` does, each model at its own working size and vividness, or at --vividness), shown in gray (the
luminance every model reads; --as-given shows a toned scan toned) and one column per model. Where there is no
colour truth (old photos), the colour a model adds is what there is to measure: its colourfulness (Hasler &
Suesstrunk) over the photos, and the share of photos with a colour cast over the whole frame (the frame's mean
ab at least CAST_CHROMA from gray, pointing the way of at least CAST_UNIFORMITY of its colour: one tint
everywhere rather than colours that differ by object), printed as one JSON line per model beside the input's
own (a sepia tone is a cast), and the share of each hue of cast (warm, yellow-green, cool). Run on a folder
of colour photos, the input's figures are the truth's: how often real photos are "one tint". --csv writes the
figures of every photo.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import tensorflow as tf  # noqa: E402

from colorgan import Colorizer  # noqa: E402
from colorgan.color.lab import rgb_to_lab  # noqa: E402
from colorgan.data.image_files import read_rgb  # noqa: E402
from colorgan.evaluation.metrics import colourfulness  # noqa: E402
from colorgan.data.scan import image_files  # noqa: E402

THUMB = 256  # px, the longer side of each cell
# A cast: the frame's mean ab is at least CAST_CHROMA Lab units from gray (clearly visible) and at least
# CAST_UNIFORMITY of the mean chroma (|mean ab| / mean |ab|): one tint over everything, not a sky and a lawn.
CAST_CHROMA, CAST_UNIFORMITY = 6.0, 0.75
# Real colour photos often pass that test (a face, a sunset, a forest; measured in docs/old_photos.md), so a cast is
# also named by its hue (the mean ab's angle: 0 magenta-red, 90 yellow, 180 green, -90 blue): warm casts are common
# in real photos, yellow-olive-green ones over a whole frame rarely are.
CAST_HUES = {"warm": (-20.0, 80.0), "yellow-green": (80.0, 160.0)}  # degrees, [low, high); anything else: "cool"


def cast_hue_name(hue: float) -> str:
    """The name of a cast's hue family (CAST_HUES) for its angle in degrees (-180 .. 180)."""
    return next((name for name, (low, high) in CAST_HUES.items() if low <= hue < high), "cool")


def colour_figures(rgb: np.ndarray) -> dict:
    """uint8 RGB -> colourfulness, the frame's mean ab (a, b), its uniformity and whether it is a cast."""
    x = np.asarray(rgb, np.float32)[None] / 255.0
    ab = rgb_to_lab(tf.constant(x)).numpy()[0, ..., 1:].reshape(-1, 2)
    mean = ab.mean(axis=0)
    strength = float(np.hypot(*mean))
    uniformity = strength / max(float(np.hypot(ab[:, 0], ab[:, 1]).mean()), 1e-6)
    cast = strength >= CAST_CHROMA and uniformity >= CAST_UNIFORMITY
    hue = float(np.degrees(np.arctan2(mean[1], mean[0])))
    return {"colourfulness": round(float(colourfulness(x)[0]), 2), "mean_a": round(float(mean[0]), 2),
            "mean_b": round(float(mean[1]), 2), "uniformity": round(uniformity, 3), "cast": cast,
            "cast_hue": cast_hue_name(hue) if cast else ""}


def thumbnail(rgb: np.ndarray, side: int = THUMB) -> np.ndarray:
    image = Image.fromarray(rgb)
    image.thumbnail((side, side), Image.LANCZOS)
    cell = Image.new("RGB", (side, side), (255, 255, 255))
    cell.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return np.asarray(cell)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", help="a folder of photos (searched recursively)")
    p.add_argument("--models", nargs="+", default=["weights"], help="run or weights directories (default: weights)")
    p.add_argument("--count", type=int, default=24, help="photos on the sheet, spread over the folder")
    p.add_argument("--vividness", type=float, help="one vividness for every model (default: each model's own)")
    p.add_argument("--columns", type=int, default=2, help="photos side by side on the sheet (default: 2)")
    p.add_argument("--out", default="reports/contact_sheet.png", help="the sheet (.png or .jpg; default: %(default)s)")
    p.add_argument("--as-given", action="store_true", help="show the input as given (toned), not in gray")
    p.add_argument("--auto-levels", action="store_true", help="colorize with --auto-levels")
    p.add_argument("--csv", help="write each photo's figures (colourfulness, mean ab, cast and its hue) here")
    args = p.parse_args(argv)

    files = image_files(Path(args.folder))
    if not files:
        p.error(f"{args.folder}: no photos")
    pick = np.unique(np.linspace(0, len(files) - 1, min(args.count, len(files))).round().astype(int))
    files = [files[i] for i in pick]
    photos = [read_rgb(str(f)) for f in files]
    colorizers = [Colorizer.load(m, auto_levels=args.auto_levels) for m in args.models]
    cells, rows = [], []
    for f, photo in zip(files, photos):
        gray = np.repeat(np.round(np.asarray(photo, np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None],
                         3, -1)
        row, figures = [thumbnail(photo if args.as_given else gray)], {"photo": f.name, "input": colour_figures(photo)}
        for model, colorizer in zip(args.models, colorizers):
            out = colorizer.colorize(photo, vividness=args.vividness)
            figures[model] = colour_figures(out)
            row.append(thumbnail(out))
        cells.append(np.concatenate(row, axis=1))
        rows.append(figures)
    per_row = args.columns
    while len(cells) % per_row:
        cells.append(np.full_like(cells[0], 255))
    sheet = np.concatenate([np.concatenate(cells[i:i + per_row], axis=1) for i in range(0, len(cells), per_row)])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out, quality=85)
    def summary(key):
        return {"colourfulness": round(float(np.mean([r[key]["colourfulness"] for r in rows])), 2),
                "cast_share": round(float(np.mean([r[key]["cast"] for r in rows])), 3),
                **{f"{name}_cast_share": round(float(np.mean([r[key]["cast_hue"] == name for r in rows])), 3)
                   for name in [*CAST_HUES, "cool"]}}
    print(json.dumps({"photos": len(photos), "sheet": str(out), "columns": ["input"] + args.models,
                      "input": summary("input")}))
    for model in args.models:
        print(json.dumps({"model": model, **summary(model)}))
    if args.csv:
        keys = ["input"] + args.models
        fields = ["colourfulness", "mean_a", "mean_b", "uniformity", "cast", "cast_hue"]
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["photo"] + [f"{k}:{name}" for k in keys for name in fields])
            for r in rows:
                writer.writerow([r["photo"]] + [r[k][name] for k in keys for name in fields])
        print(json.dumps({"csv": args.csv}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
