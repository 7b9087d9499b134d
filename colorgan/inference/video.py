"""Colorizing videos frame by frame, with colour kept steady over time.

The network sees one frame at a time, so what barely changes between frames (sensor noise, compression,
a slow pan) still moves its colour guess: a wall that stays put shimmers from one colour to the next.
Each frame's chroma (ab) is predicted at the model's working size (Colorizer.prepare / predict_ab),
smoothed over time with an exponential moving average, and recombined with the frame's own full-resolution
L (Colorizer.finish): luminance, and so all detail and motion, is the input's, frame by frame; only colour
is averaged. The average restarts at a scene cut, found from the luminance histogram of consecutive frames,
so a new scene does not inherit the colours of the last one.

Videos are read and written with OpenCV (FFmpeg): same size, frame rate and frame count; MPEG-4 Part 2
('mp4v', 'XVID' in .avi), which every OpenCV build can write. Its 4:2:0 chroma needs even sides: a video of
odd width or height loses its last column or row, as it would with any such codec. The output is written
under a temporary name and renamed when whole (atomic.py), so an interrupted run leaves no half video under
the final name.

    frames = colorized_frames(Colorizer.load(), rgb_frames, smoothing=0.5)   # uint8 RGB in and out
"""
from __future__ import annotations

import itertools
import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

# FFmpeg prints its own diagnostics ("moov atom not found", "Packet corrupt") to stderr; a damaged video is
# reported once, in colorgan's one line, so they are off unless the user asks for them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from colorgan.progress import progress_bar  # noqa: E402

from colorgan.atomic import temp_path  # noqa: E402
from colorgan.errors import ColorganError  # noqa: E402

# Container -> the codec written into it: MPEG-4 Part 2 is in every OpenCV build's FFmpeg (H.264 is not).
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "XVID"}
VIDEO_SUFFIXES = tuple(VIDEO_CODECS)

# Each frame's ab is this much the running average and the rest its own prediction (0: off). The average
# spans about 1 / (1 - A) frames: 0.5 is 2 frames, under a tenth of a second at 24 fps. Chosen by measurement
# (benchmarks/video_flicker.py, a pan and zoom of about 2.7 px a frame over real photos): 0.5 takes 42% of
# the flicker away at no measurable cost in colour accuracy against the photos' true colour (+0.1% error,
# none where the picture moves); stronger averaging takes more flicker away but makes colour trail behind
# moving edges, each step costing more accuracy than the last (0.6: -49% flicker, +0.3% error; 0.8: -63%,
# +1.4%; 0.9: -73%, +3.6%).
DEFAULT_SMOOTHING = 0.5

# A scene cut: the luminance histograms of consecutive frames differ by more than this (total variation
# distance, the share of pixels that would have to change bins, 0 to 1). Within a shot a pan or a zoom moves
# it by a few hundredths (at most 0.024 on the benchmark's pan and zoom over real photos); a cut between two
# different scenes by far more (0.36 to 0.84 there). 0.2 leaves room above for what changes the histogram
# within a shot in real footage (exposure drift, a light switched on) and below for cuts between similar
# scenes. A miss lets the old scene's colour bleed into the new one for a few frames; a false cut only
# restarts the average (one frame of the flicker smoothing removes).
SCENE_CUT = 0.2
HISTOGRAM_BINS = 32  # coarse enough that noise and small shifts of brightness stay within a bin

# Containers without a frame index give the frame count from duration x frame rate, which can be one over
# what decodes; a file that decodes fewer frames than that ends early (truncated).
FRAME_COUNT_SLACK = 1
DEFAULT_FPS = 25.0  # where the container records no frame rate (some raw streams): PAL's

# For `flicker`: a pixel whose L (0-100) moved less than this between two frames looks still (1 is about a
# just-noticeable difference), so any change of its colour there is flicker, not motion.
STILL_L = 1.0


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_CODECS


def check_smoothing(value: float) -> float:
    """The temporal smoothing strength, 0 (off) up to but not including 1 (colour frozen forever)."""
    value = float(value)
    if not 0.0 <= value < 1.0:  # also NaN
        raise ColorganError(f"temporal smoothing must be at least 0 and below 1, got {value}")
    return value


# ---- over time: scene cuts and the moving average ---------------------------------------------------------
def luminance_histogram(gray: np.ndarray) -> np.ndarray:
    """Gray [H, W] or [H, W, 1] float32 in [0, 1] -> its histogram, HISTOGRAM_BINS bins summing to 1."""
    gray = np.ascontiguousarray(gray.reshape(gray.shape[0], gray.shape[1]), np.float32)
    hist = cv2.calcHist([gray], [0], None, [HISTOGRAM_BINS], [0.0, 1.0 + 1e-6]).reshape(-1)  # 1.0: top bin
    return hist / max(float(hist.sum()), 1.0)


def histogram_change(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two histograms: 0 the same, 1 nothing in common."""
    return 0.5 * float(np.abs(a - b).sum())


class SceneCuts:
    """Feed frames in order; says for each whether it starts a new scene (the first frame does)."""

    def __init__(self, threshold: float = SCENE_CUT):
        self.threshold = threshold
        self.previous = None

    def is_cut(self, gray: np.ndarray) -> bool:
        hist = luminance_histogram(gray)
        cut = self.previous is None or histogram_change(self.previous, hist) > self.threshold
        self.previous = hist
        return cut


class AbAverage:
    """Exponential moving average of ab over frames: strength x the average + (1 - strength) x the frame's."""

    def __init__(self, strength: float):
        self.strength = check_smoothing(strength)
        self.average = None

    def update(self, ab: np.ndarray, restart: bool = False) -> np.ndarray:
        if self.average is None or restart or self.average.shape != ab.shape:
            self.average = ab
        else:
            self.average = self.strength * self.average + (1.0 - self.strength) * ab
        return self.average


class SteadyColorizer:
    """A Colorizer for consecutive frames of one video: call it on each frame in order.

    The Colorizer's own steps, with the average between prediction and recombination: ab at the working
    size is small (at the shipped 128 px, a few hundred times fewer numbers than a 1080p frame), so
    averaging it costs nothing.

    hints (a --hints model): colour hints by frame number, {frame: [hints]} (0 the first frame): hints given on
    a frame hold for the frames after it, as the user placed them on the picture, until the next scene cut or
    the next frame with hints of its own (an empty list clears them).
    """

    def __init__(self, colorizer, smoothing: float = DEFAULT_SMOOTHING, vividness: float | None = None,
                 hints: dict | None = None):
        self.colorizer = colorizer
        self.cuts, self.average = SceneCuts(), AbAverage(smoothing)
        self.vividness = np.array([colorizer.check_vividness(vividness)], np.float32)
        self.hints_by_frame = dict(hints or {})
        if any(self.hints_by_frame.values()) and not colorizer.takes_hints:
            raise ColorganError("this model was trained without --hints: it cannot take colour hints")
        self.frame, self.hints = 0, []

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """uint8 RGB or gray frame -> colorized uint8 RGB frame of the same size."""
        prepared = self.colorizer.prepare(frame)
        cut = self.cuts.is_cut(prepared.gray)
        if self.frame in self.hints_by_frame:
            self.hints = self.hints_by_frame[self.frame]
        elif cut:  # a new scene: the last one's hints were placed on other things
            self.hints = []
        self.frame += 1
        ab = self.colorizer.predict_ab(prepared.model_in, self.vividness,
                                       self.colorizer.hint_map(prepared, self.hints))[0]
        return self.colorizer.finish(prepared, self.average.update(ab, restart=cut))


def colorized_frames(colorizer, frames: Iterable[np.ndarray], smoothing: float = DEFAULT_SMOOTHING,
                     vividness: float | None = None, hints: dict | None = None) -> Iterator[np.ndarray]:
    """Frames in order (uint8 RGB or gray, all one size) -> colorized uint8 RGB frames of the same size;
    hints by frame as SteadyColorizer takes them."""
    steady = SteadyColorizer(colorizer, smoothing, vividness, hints)
    return (steady(frame) for frame in frames)


# ---- files -------------------------------------------------------------------------------------------------
class VideoInfo(NamedTuple):
    width: int
    height: int
    fps: float
    frames: int  # as the container says; 0 when it does not


def _check_file(path: Path) -> None:
    """The reasons a file cannot be a video, said the way image_files says them for photos."""
    if not path.exists():
        raise ColorganError(f"{path}: no such file (or a broken link)")
    if path.is_dir():
        raise ColorganError(f"{path}: is a folder")
    if not os.access(path, os.R_OK):
        raise ColorganError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        raise ColorganError(f"{path}: empty file (0 bytes)")


@contextmanager
def opened_video(path: str | os.PathLike):
    """(OpenCV capture, VideoInfo) of a video file; a file FFmpeg cannot open is a ColorganError naming it."""
    path = Path(path)
    _check_file(path)
    # FFmpeg only: OpenCV's other backends would read "clip%03d.png"-like names as image sequences.
    with _opencv_warnings_off():  # a file FFmpeg cannot open is said below, once
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            raise ColorganError(f"{path}: cannot decode, damaged or incomplete (not a video FFmpeg can open)")
        info = VideoInfo(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                         float(capture.get(cv2.CAP_PROP_FPS)), max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0))
        yield capture, info
    finally:
        capture.release()


@contextmanager
def _opencv_warnings_off():
    """OpenCV's own warnings off for a moment (errors still shown), then back to what they were."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(min(previous, cv2.utils.logging.LOG_LEVEL_ERROR))
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def read_frames(capture) -> Iterator[np.ndarray]:
    """uint8 RGB frames of an opened capture, in order, until it ends (or stops decoding)."""
    while True:
        ok, bgr = capture.read()
        if not ok:
            return
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_video(path: str | os.PathLike) -> tuple[list[np.ndarray], VideoInfo]:
    """Every frame of a (short) video as uint8 RGB, and its VideoInfo: for tests and benchmarks."""
    with opened_video(path) as (capture, info):
        return list(read_frames(capture)), info


@contextmanager
def video_writer(path: str | os.PathLike, fps: float, width: int, height: int):
    """A VideoWriter onto path's temporary name, renamed onto path only if the block ends normally.

    Any exception (a damaged input found mid-way, Ctrl-C) removes the temporary file: nothing half-written
    is left, under either name.
    """
    path = Path(path)
    codec = VIDEO_CODECS.get(path.suffix.lower())
    if codec is None:
        raise ColorganError(f"{path}: cannot write video as {path.suffix!r} (use one of {', '.join(VIDEO_SUFFIXES)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)  # keeps the suffix: FFmpeg picks the container from it
    writer = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    try:
        if not writer.isOpened():
            raise ColorganError(f"{path}: cannot write a {width}x{height} {codec} video there")
        yield writer
        writer.release()  # writes the container's index: only now is the file whole
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise ColorganError(f"{path}: the video writer wrote nothing")
        os.replace(tmp, path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> int:
    """uint8 RGB frames (all one size) -> a video file, written whole then renamed; returns the frame count."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ColorganError(f"{path}: no frames to write")
    n = 0
    with video_writer(path, fps, first.shape[1], first.shape[0]) as writer:
        for frame in itertools.chain([first], frames):
            writer.write(_bgr(frame))
            n += 1
    return n


def _bgr(frame: np.ndarray) -> np.ndarray:
    """uint8 RGB (or gray) -> the BGR OpenCV writes."""
    return cv2.cvtColor(_rgb(frame)[..., :3], cv2.COLOR_RGB2BGR)


def colorize_video(colorizer, src: str | os.PathLike, dst: str | os.PathLike, smoothing: float = DEFAULT_SMOOTHING,
                   side_by_side: str | os.PathLike | None = None, vividness: float | None = None,
                   progress: bool = True, hints: dict | None = None) -> int:
    """Colorize the video src into dst (and a gray | colour video into side_by_side); returns the frame count.
    hints: colour hints by frame number (SteadyColorizer).

    A file that cannot be opened, has no frame, or ends before the frame count its container gives is a
    ColorganError naming it, and nothing is written.
    """
    src = Path(src)
    with opened_video(src) as (capture, info), ExitStack() as outputs:
        fps = info.fps if info.fps > 0 else DEFAULT_FPS
        writer = outputs.enter_context(video_writer(dst, fps, info.width, info.height))
        pair_writer = (outputs.enter_context(video_writer(side_by_side, fps, 2 * info.width, info.height))
                       if side_by_side else None)
        bar = outputs.enter_context(progress_bar(total=info.frames or None, unit="frame", desc=src.name, leave=False,
                                         disable=not progress))
        steady, n = SteadyColorizer(colorizer, smoothing, vividness, hints), 0
        for frame in read_frames(capture):
            colour = steady(frame)
            writer.write(_bgr(colour))
            if pair_writer is not None:
                pair_writer.write(_bgr(_side_by_side(frame, colour)))
            n += 1
            bar.update()
        if n == 0:
            raise ColorganError(f"{src}: cannot decode, damaged or incomplete (no frame decodes)")
        if info.frames and n < info.frames - FRAME_COUNT_SLACK:
            raise ColorganError(f"{src}: cannot decode, damaged or incomplete "
                                f"(the file ends early: {n} of {info.frames} frames)")
    return n


def _side_by_side(frame: np.ndarray, colour: np.ndarray) -> np.ndarray:
    from colorgan.inference.colorizer import side_by_side_image  # the photos' gray | colour panel
    return side_by_side_image(frame, colour)


# ---- measuring -------------------------------------------------------------------------------------------
def lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> float32 Lab (L 0-100; OpenCV's float conversion, the formulas of color.py)."""
    return cv2.cvtColor(rgb[..., :3].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def flicker(inputs: list[np.ndarray], outputs: list[np.ndarray], cuts: Iterable[int] = ()) -> tuple[float, float]:
    """Mean |delta ab| (Lab units) between consecutive output frames over the pixels whose input L moved less
    than STILL_L, leaving out each pair that straddles a cut (cuts: indices of frames that start a scene).

    Returns (flicker, share of pixel pairs counted).
    """
    cuts = set(cuts)
    total, count, pixels = 0.0, 0, 0
    prev_l = prev_ab = None
    for i, (x, y) in enumerate(zip(inputs, outputs)):
        l_in, ab_out = lab(_rgb(x))[..., 0], lab(y)[..., 1:]
        if prev_l is not None and i not in cuts:
            still = np.abs(l_in - prev_l) < STILL_L
            total += float(np.linalg.norm(ab_out - prev_ab, axis=-1)[still].sum())
            count += int(still.sum())
            pixels += still.size
        prev_l, prev_ab = l_in, ab_out
    return (total / count if count else float("nan")), (count / pixels if pixels else 0.0)


def _rgb(frame: np.ndarray) -> np.ndarray:
    """uint8 gray [H, W] / [H, W, 1] or RGB -> RGB."""
    return np.repeat(frame.reshape(*frame.shape[:2], 1), 3, axis=-1) if frame.ndim == 2 or frame.shape[-1] == 1 \
        else frame
