"""A contact sheet of real photos as each model colorizes them, and the colour each adds: for looking, not scoring.

    python benchmarks/contact_sheet.py ../shared/data/old-photos --models weights checkpoints/RUN \
        --count 24 --out reports/old_photos_sheet.png

Photos are taken spread over the folder (sorted by name), colorized at full resolution with `Colorizer` (as
`colorize.py` does, each model at its own working size and vividness, or at --vividness), shown as their input
(as given: a toned scan stays toned) and one column per model. Where there is no colour truth (old photos), the
colour a model adds is what there is to measure: its colourfulness (Hasler & Suesstrunk) over the photos,
printed as one JSON line per model, beside the input's own (a sepia tone has some).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from colorgan import Colorizer  # noqa: E402
from colorgan.image_files import read_rgb  # noqa: E402
from colorgan.metrics import colourfulness  # noqa: E402
from colorgan.scan import image_files  # noqa: E402

THUMB = 256  # px, the longer side of each cell


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
    args = p.parse_args(argv)

    files = image_files(Path(args.folder))
    if not files:
        p.error(f"{args.folder}: no photos")
    pick = np.unique(np.linspace(0, len(files) - 1, min(args.count, len(files))).round().astype(int))
    files = [files[i] for i in pick]
    photos = [read_rgb(str(f)) for f in files]
    colorizers = [Colorizer.load(m) for m in args.models]
    cells, added = [], {m: [] for m in args.models}
    given = float(np.mean([colourfulness(np.asarray(x, np.float32)[None] / 255.0)[0] for x in photos]))
    for photo in photos:
        row = [thumbnail(photo)]
        for model, colorizer in zip(args.models, colorizers):
            out = colorizer.colorize(photo, vividness=args.vividness)
            added[model].append(float(colourfulness(np.asarray(out, np.float32)[None] / 255.0)[0]))
            row.append(thumbnail(out))
        cells.append(np.concatenate(row, axis=1))
    per_row = args.columns
    while len(cells) % per_row:
        cells.append(np.full_like(cells[0], 255))
    sheet = np.concatenate([np.concatenate(cells[i:i + per_row], axis=1) for i in range(0, len(cells), per_row)])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out, quality=85)
    print(json.dumps({"photos": len(photos), "input_colourfulness": round(given, 2), "sheet": str(out),
                      "columns": ["input"] + args.models}))
    for model in args.models:
        print(json.dumps({"model": model, "colourfulness": round(float(np.mean(added[model])), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
