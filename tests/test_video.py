"""Video colorization (colorgan/inference/video.py): frames, size and frame rate kept, luminance kept, colour steadied over
time and restarted at scene cuts, damaged files reported in one line while the others are still colorized.

Clips are small and synthetic, written with OpenCV in tmp_path. Where a test needs only the plumbing it uses a
tiny untrained generator, or one whose predicted ab is injected; the shipped weights only where colour matters.
"""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from colorgan import Colorizer
from colorgan.cli import run_main
from colorgan.models.networks import build_models
from colorgan.inference.video import (SCENE_CUT, SceneCuts, colorize_video, colorized_frames, flicker, histogram_change, lab,
                            luminance_histogram, read_video)
from conftest import ROOT, sample_images, tiny_config

FPS = 12.0


@pytest.fixture(scope="module")
def tiny_generator_file(tmp_path_factory):
    generator, _ = build_models(tiny_config(model="unet-l1", base_filters=4))
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    generator.save(path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_generator_file):
    """An untrained generator at a 32 px working size: colours are noise, the plumbing is real."""
    return Colorizer.load(tiny_generator_file, render_size=32)


@pytest.fixture(scope="module")
def shipped():
    return Colorizer.load()


def write_clip(path, frames, fps=FPS, fourcc="mp4v"):
    """uint8 RGB (or gray) frames -> a video file, with OpenCV directly (not the code under test)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def static_with_moving_square(n=16, h=48, w=64, seed=0):
    """A still textured background (the static region) with a bright square sliding across it."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(40, 200, (h, w)).astype(np.uint8), (5, 5), 0)
    frames = []
    for i in range(n):
        f = background.copy()
        x = 4 + 2 * i
        f[16:32, x:x + 12] = 230
        frames.append(f)
    return frames


def panned_photo(n=12, h=48, w=64):
    """A real colour photo, panned a pixel a frame."""
    photo = cv2.cvtColor(cv2.imread(str(sample_images(4)[1])), cv2.COLOR_BGR2RGB)
    big = cv2.resize(photo, (w + n, h), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(big[:, i:i + w]) for i in range(n)]


def lightness(frames):
    return np.stack([lab(f)[..., 0] for f in frames])


def mean_a(frames):
    """Mean Lab a of each frame."""
    return np.array([lab(f)[..., 1].mean() for f in frames])


@pytest.mark.parametrize("suffix, fourcc", [(".mp4", "mp4v"), (".avi", "XVID")])
def test_frame_count_size_and_frame_rate_kept(tiny, tmp_path, suffix, fourcc):
    clip = write_clip(tmp_path / f"clip{suffix}", static_with_moving_square(n=15, h=48, w=80), fps=FPS, fourcc=fourcc)
    out = tmp_path / "out" / f"clip{suffix}"
    assert colorize_video(tiny, clip, out, progress=False) == 15
    frames, info = read_video(out)
    assert len(frames) == info.frames == 15
    assert frames[0].shape == (48, 80, 3) and (info.width, info.height) == (80, 48)
    assert info.fps == pytest.approx(FPS)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left beside it


def test_luminance_kept_and_colour_as_for_a_photo(shipped, tmp_path):
    """Lab L of every output frame is its input frame's (codec noise aside), and the colour is what the
    Colorizer gives the same frame as a photo (an RGB/BGR mix-up would fail both)."""
    clip = write_clip(tmp_path / "pan.mp4", panned_photo())
    decoded, _ = read_video(clip)  # what the colorizer sees
    out = tmp_path / "out.mp4"
    colorize_video(shipped, clip, out, smoothing=0.0, progress=False)
    written, _ = read_video(out)
    gray = [np.repeat(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1) for f in decoded]
    # L in 0-100; codec noise: 0.7 here (with R and B swapped: 2.3)
    assert np.abs(lightness(written) - lightness(gray)).mean() < 1.5
    chroma = np.mean([np.linalg.norm(lab(f)[..., 1:], axis=-1).mean() for f in written])
    assert chroma > 5  # coloured, so the checks below mean something
    as_photos = [shipped.colorize(f) for f in decoded]
    assert np.abs(np.stack([lab(f)[..., 1:] for f in written]) - np.stack([lab(f)[..., 1:] for f in as_photos])
                  ).mean() < 3.0  # codec noise: 1.5 here; with R and B swapped, 14


def jittering_ab(rng, base=(10.0, -5.0), jitter=8.0):
    """A predictor whose ab is a fixed colour plus a new random offset every frame (flicker)."""
    def predict_ab(model_in, vividness, hints=None):
        n, h, w, _ = model_in.shape
        offset = rng.normal(0.0, jitter, (n, 1, 1, 2))
        return (np.broadcast_to(np.array(base), (n, h, w, 2)) + offset).astype(np.float32)
    return predict_ab


def test_smoothing_lowers_flicker_on_a_static_region(tiny, tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "still.mp4", static_with_moving_square(n=24))
    decoded, _ = read_video(clip)
    measured = {}
    for smoothing in (0.0, 0.5, 0.8):
        monkeypatch.setattr(tiny, "predict_ab", jittering_ab(np.random.default_rng(0)))
        out = tmp_path / f"out-{smoothing}.mp4"
        colorize_video(tiny, clip, out, smoothing=smoothing, progress=False)
        measured[smoothing], still = flicker(decoded, read_video(out)[0])
        assert still > 0.5  # most of the frame is the static background
    assert measured[0.5] < 0.6 * measured[0.0]  # 0.42x here
    assert measured[0.8] < 0.3 * measured[0.0]  # 0.16x here


def scene_ab(model_in, vividness, hints=None):
    """ab by scene: reddish for a dark frame, greenish for a bright one (model input is L / 50 - 1)."""
    n, h, w, _ = model_in.shape
    a = np.where(model_in.mean(axis=(1, 2, 3)) < 0.0, 30.0, -30.0)
    return np.broadcast_to(np.stack([a, np.zeros(n)], -1)[:, None, None, :], (n, h, w, 2)).astype(np.float32)


def test_scene_cut_restarts_the_average(tiny, monkeypatch):
    rng = np.random.default_rng(1)
    dark = [np.clip(70 + rng.normal(0, 6, (48, 64)), 0, 255).astype(np.uint8) for _ in range(8)]
    bright = [np.clip(180 + rng.normal(0, 6, (48, 64)), 0, 255).astype(np.uint8) for _ in range(8)]
    monkeypatch.setattr(tiny, "predict_ab", scene_ab)
    a = mean_a(list(colorized_frames(tiny, dark + bright, smoothing=0.9)))
    assert a[7] > 20  # the dark scene's colour
    assert a[8] < -20 and abs(a[8] - a[15]) < 2  # the first bright frame has the bright scene's colour, not a mix
    cuts = SceneCuts()
    assert [i for i, f in enumerate(dark + bright) if cuts.is_cut(f.astype(np.float32) / 255)] == [0, 8]


def test_scene_cut_threshold_ignores_motion_within_a_shot():
    frames = static_with_moving_square(n=10)
    hists = [luminance_histogram(f.astype(np.float32) / 255) for f in frames]
    assert max(histogram_change(a, b) for a, b in zip(hists, hists[1:])) < SCENE_CUT / 2


def test_interrupted_video_leaves_no_file(tiny, tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "clip.mp4", static_with_moving_square(n=10))
    frames_done = []

    def interrupt_at_frame_5(model_in, vividness, hints=None):
        frames_done.append(1)
        if len(frames_done) == 5:
            raise KeyboardInterrupt
        return np.zeros((*model_in.shape[:3], 2), np.float32)
    monkeypatch.setattr(tiny, "predict_ab", interrupt_at_frame_5)
    out_dir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        colorize_video(tiny, clip, out_dir / "clip.mp4", side_by_side=out_dir / "clip_side_by_side.mp4",
                       progress=False)
    assert list(out_dir.iterdir()) == []  # neither the final name nor the temporary one


def test_damaged_videos_are_one_line_each_and_the_rest_are_colorized(tiny_generator_file, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    good = write_clip(folder / "good.mp4", static_with_moving_square(n=10))
    cv2.imwrite(str(folder / "photo.jpg"), static_with_moving_square(n=1)[0])
    (folder / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 100)
    (folder / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # no index (moov)
    whole = write_clip(tmp_path / "whole.mkv", static_with_moving_square(n=20))
    (folder / "ends_early.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])  # opens, ends
    (tmp_path / "more").mkdir()
    write_clip(tmp_path / "more" / "second.mov", static_with_moving_square(n=6))  # given by a glob
    out_dir = tmp_path / "out"
    run = subprocess.run([sys.executable, str(ROOT / "colorize.py"), str(folder), str(tmp_path / "more" / "*.mov"),
                          "--model", str(tiny_generator_file),
                          "--render-size", "32", "-o", str(out_dir), "--side-by-side"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "colorized 3 of 6 files" in run.stdout, run.stdout
    for bad in ("garbage.mp4", "truncated.mp4", "ends_early.mkv"):
        lines = [line for line in run.stdout.splitlines() if bad in line]
        assert len(lines) == 1 and "damaged or incomplete" in lines[0], run.stdout
        said = [line for line in run.stderr.splitlines()
                if bad in line and "%|" not in line and " so far" not in line]  # not its progress
        assert len(said) == 1 and said[0].startswith("WARNING: skipped"), run.stderr
    assert "ends early" in run.stdout
    for noise in ("moov", "FFMPEG", "WARN:"):  # FFmpeg's and OpenCV's own messages stay quiet
        assert noise not in run.stderr, run.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "good.mp4", "good_side_by_side.mp4", "photo.jpg", "photo_side_by_side.jpg", "second.mov",
        "second_side_by_side.mov"]
    frames, info = read_video(out_dir / "good_side_by_side.mp4")
    assert len(frames) == 10 and (info.width, info.height) == (128, 48)


def test_temporal_smoothing_flag_rejects_out_of_range_in_one_line(tmp_path, capsys, monkeypatch):
    from colorgan.commands.colorize import main
    monkeypatch.chdir(tmp_path)
    for bad in ("1", "-0.1", "nan", "strong"):
        with pytest.raises(SystemExit) as exit_:
            run_main("colorize.py", lambda: main(["clip.mp4", "--temporal-smoothing", bad]))
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exit_.value.code == 2 and len(err) == 1 and "--temporal-smoothing" in err[0], err
    assert list(tmp_path.iterdir()) == []
