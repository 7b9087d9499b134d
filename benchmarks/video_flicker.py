"""Flicker and speed of video colorization, with and without temporal smoothing, on a clip made of real photos.

    python benchmarks/video_flicker.py [--model weights] [--frames 48] [--width 256 --height 192]
                                       [--smoothing 0,0.3,0.5,0.6,0.7,0.8,0.9]

The clip: a slow pan and zoom over each of a few real colour photos (../shared/data: two from imagenet-sample,
two from "landscape Images/color"), with a hard cut between photos, shown to the colorizer in gray as
black-and-white footage would be. For each smoothing strength it prints:
  flicker      mean |delta ab| (Lab units) between consecutive output frames over the pixels whose luminance
               moved less than video.STILL_L (1 L unit), pairs across a cut left out (video.flicker)
  still        the share of pixel pairs that count as still
  ab_error     mean |ab - true ab| against the photos' own colour, over every pixel and (ab_error_moving) over
               the pixels that moved: what smoothing costs where colour trails moving content
  ms_frame     milliseconds per frame (the median), frames in memory
Then the same clip through files, as colorize.py runs it (mp4v in and out, decoding and encoding included),
smoothing off and at the default: ms per frame (the mean, the whole run) and the flicker of the written
video. Also the histogram
change (video.histogram_change) within shots and at the cuts, against the scene-cut threshold.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorgan.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from colorgan import Colorizer  # noqa: E402
from colorgan.inference.video import (DEFAULT_SMOOTHING, SCENE_CUT, STILL_L, colorize_video, colorized_frames,  # noqa: E402
                            flicker, histogram_change, lab, luminance_histogram, read_video, write_video)

DATA = ROOT.parent / "shared" / "data"
PHOTOS = [DATA / "imagenet-sample" / "n01514859_hen.jpg", DATA / "landscape Images" / "color" / "1000.jpg",
          DATA / "imagenet-sample" / "n03028079_church.jpg", DATA / "landscape Images" / "color" / "2024.jpg"]
ZOOM = 1.25  # the crop shrinks to 1/1.25 of its width over a shot
ROOM = 0.7  # the first crop is 70% of the largest that fits: the pan crosses the other 30% (about 2 px a frame)


def pan_and_zoom(photo: np.ndarray, frames: int, width: int, height: int) -> list[np.ndarray]:
    """uint8 RGB photo -> frames of a slow pan (left to right) and zoom in, each width x height."""
    h, w = photo.shape[:2]
    crop_w0 = ROOM * min(w, h * width / height)
    out = []
    for t in np.linspace(0.0, 1.0, frames):
        crop_w = crop_w0 / (1.0 + (ZOOM - 1.0) * t)
        scale = crop_w / width  # source pixels per output pixel
        cx = crop_w / 2 + (w - crop_w) * t  # left edge to right edge: never off the photo
        cy = h / 2
        # dst -> src: x_src = scale * x_dst + (cx - scale * width / 2)
        m = np.array([[scale, 0, cx - scale * width / 2], [0, scale, cy - scale * height / 2]], np.float64)
        out.append(cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT))
    return out


def build_clip(frames: int, width: int, height: int) -> tuple[list[np.ndarray], list[int]]:
    """Colour frames of every photo's shot, one after another, and the indices where a shot starts."""
    clip, cuts = [], []
    for path in PHOTOS:
        photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        cuts.append(len(clip))
        clip += pan_and_zoom(photo, frames, width, height)
    return clip, cuts


def gray3(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)


def ab_errors(outputs: list[np.ndarray], truth: list[np.ndarray], cuts: list[int]) -> tuple[float, float]:
    """Mean |ab - true ab| over every pixel, and over the pixels that moved (L changed by STILL_L or more
    since the frame before, in the same shot): where smoothing can make colour trail behind."""
    every, moving, n_moving = [], 0.0, 0
    prev_l = None
    for i, (y, t) in enumerate(zip(outputs, truth)):
        lab_t = lab(t)
        err = np.linalg.norm(lab(y)[..., 1:] - lab_t[..., 1:], axis=-1)
        every.append(err.mean())
        if prev_l is not None and i not in cuts:
            moved = np.abs(lab_t[..., 0] - prev_l) >= STILL_L
            moving += float(err[moved].sum())
            n_moving += int(moved.sum())
        prev_l = lab_t[..., 0]
    return float(np.mean(every)), moving / max(n_moving, 1)


def motion(frames: list[np.ndarray], cuts: list[int]) -> float:
    """Median optical-flow speed (output px per frame) within shots: how fast the pan and zoom move."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    speeds = [np.median(np.linalg.norm(cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0), axis=-1))
              for i, (a, b) in enumerate(zip(gray, gray[1:]), start=1) if i not in cuts]
    return float(np.median(speeds))


def histogram_changes(frames: list[np.ndarray], cuts: list[int]) -> dict:
    hists = [luminance_histogram(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0) for f in frames]
    changes = [histogram_change(a, b) for a, b in zip(hists, hists[1:])]
    within = [c for i, c in enumerate(changes, start=1) if i not in cuts]
    at_cuts = [c for i, c in enumerate(changes, start=1) if i in cuts]
    detected = [0] + [i for i, c in enumerate(changes, start=1) if c > SCENE_CUT]
    return {"within_shot_max": round(max(within), 3), "within_shot_mean": round(float(np.mean(within)), 4),
            "at_cuts": [round(c, 3) for c in at_cuts], "threshold": SCENE_CUT, "cuts": cuts, "detected": detected}


def timed_frames(colorizer, frames, smoothing) -> tuple[list[np.ndarray], float]:
    """The colorized frames and the median milliseconds a frame took (the median: other work on the machine
    slows some frames down, not the colorizer)."""
    out, times = [], []
    frames_out = colorized_frames(colorizer, frames, smoothing)
    while True:
        t = time.perf_counter()
        frame = next(frames_out, None)
        if frame is None:
            break
        times.append(time.perf_counter() - t)
        out.append(frame)
    return out, float(np.median(times)) * 1000.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None, help="run or weights directory (default: weights/)")
    p.add_argument("--frames", type=int, default=48, help="frames per photo")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--smoothing", default="0,0.3,0.5,0.6,0.7,0.8,0.9")
    a = p.parse_args()
    colorizer = Colorizer.load(a.model)
    truth, cuts = build_clip(a.frames, a.width, a.height)
    gray = [gray3(f) for f in truth]
    list(colorized_frames(colorizer, gray[:2], 0.0))  # warm-up: tracing
    print(json.dumps({"clip": f"{len(PHOTOS)} photos x {a.frames} frames, {a.width}x{a.height}, pan and zoom "
                              f"{ZOOM}x, hard cuts", "motion_px_per_frame": round(motion(gray, cuts), 2),
                      "photos": [str(p.relative_to(DATA)) for p in PHOTOS], "render_size": colorizer.render_size,
                      "histogram_change": histogram_changes(gray, cuts)}))
    for s in [float(x) for x in a.smoothing.split(",")]:
        out, ms = timed_frames(colorizer, gray, s)
        f, still = flicker(gray, out, cuts)
        error, error_moving = ab_errors(out, truth, cuts)
        print(json.dumps({"smoothing": s, "flicker": round(f, 3), "still": round(still, 3),
                          "ab_error": round(error, 3), "ab_error_moving": round(error_moving, 3),
                          "ms_frame": round(ms, 1)}))
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_video(clip, gray, fps=24.0)
        decoded, _ = read_video(clip)
        for s in (0.0, DEFAULT_SMOOTHING):
            out_file = Path(tmp) / f"out-{s}.mp4"
            t = time.perf_counter()
            n = colorize_video(colorizer, clip, out_file, s, progress=False)
            ms = (time.perf_counter() - t) / n * 1000.0
            written, info = read_video(out_file)
            f, still = flicker(decoded, written, cuts)
            print(json.dumps({"through_files": "mp4v", "smoothing": s, "frames": n, "fps": info.fps,
                              "flicker": round(f, 3), "still": round(still, 3), "ms_frame": round(ms, 1)}))


if __name__ == "__main__":
    main()
