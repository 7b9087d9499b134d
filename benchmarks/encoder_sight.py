"""How much of a photo the pretrained encoder recognises at each working size: the reason for the shipped size.

    python benchmarks/encoder_sight.py --data ../shared/data/imagenet-sample [--sizes 64,96,128,160,224]

EfficientNet-Lite0 with its ImageNet head (colorgan.models.efficientnet, the encoder of --generator effnet-lite0)
classifies every photo of imagenet-sample (one photo for each of 762 ImageNet classes, the class in the file
name) at each size: shorter side to the size, centre crop, in colour and as the gray photo a colorizer gets.
Prints a Markdown table of top-1 accuracy. A colorizer working at a size where its encoder recognises little
has little but texture and brightness to choose colours from.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from colorgan.models import efficientnet as effnet  # noqa: E402
from test_efficientnet import ilsvrc_wnids  # noqa: E402  (the 1000 class ids in ImageNet's index order)


def centre_crop(image: Image.Image, size: int) -> np.ndarray:
    scale = size / min(image.size)
    image = image.resize((max(size, round(image.size[0] * scale)), max(size, round(image.size[1] * scale))),
                         Image.BICUBIC)
    left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the imagenet-sample folder (files <wnid>_<name>.jpg)")
    parser.add_argument("--sizes", default="64,96,128,160,224", help="comma list of sizes (default: %(default)s)")
    args = parser.parse_args()
    photos = sorted(Path(args.data).glob("n*.jpg"))
    if not photos:
        sys.exit(f"encoder_sight.py: no <wnid>_<name>.jpg photos in {args.data}")
    index = {wnid: i for i, wnid in enumerate(ilsvrc_wnids({p.name[:9] for p in photos}))}
    labels = np.array([index[p.name[:9]] for p in photos])
    images = [Image.open(p).convert("RGB") for p in photos]
    print(f"{len(photos)} photos of {args.data}\n\n| size (px) | top-1, colour | top-1, gray |\n| --- | --- | --- |")
    for size in (int(s) for s in args.sizes.split(",")):
        model = effnet.efficientnet_lite0("imagenet", include_top=True, input_shape=(size, size, 3))
        colour = np.stack([centre_crop(im, size) for im in images])
        gray = np.repeat(colour.mean(-1, keepdims=True), 3, -1)
        top1 = [np.mean(model.predict(effnet.preprocess_rgb(x), batch_size=32, verbose=0).argmax(1) == labels)
                for x in (colour, gray)]
        print(f"| {size} | {top1[0]:.3f} | {top1[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
