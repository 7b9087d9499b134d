"""Several plausible colourings of one photo (colorize.py --variants K, Colorizer.colorize_variants): drawn hints
from the model's own prediction, seeded, each keeping the photo's luminance, each reusable as a --hints-file."""
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan.color.lab import rgb_to_lab
from colorgan.errors import ColorganError
from colorgan.inference.colorizer import Colorizer
from colorgan.inference.files import colorize_jobs
from colorgan.inference.hints import Hint, load_hints_file, parse_hint
from colorgan.inference.variants import (CHROMA_RANGE, MAX_TURN_DEGREES, MAX_VARIANTS, VARIANT_POINTS,
                                         check_variant_count, draw_variant_hints)
from conftest import ROOT

HINTS_MODEL = ROOT / "weights" / "hints"


@pytest.fixture(scope="module")
def hinted():
    return Colorizer.load(HINTS_MODEL)


def _photo(seed=0, height=96, width=144):
    """A gray photo with a few flat regions (objects for the hints to recolour)."""
    rng = np.random.default_rng(seed)
    photo = np.full((height, width), 120, np.uint8)
    photo[20:70, 15:60] = 170
    photo[30:90, 80:130] = 70
    return np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)


def _lab(rgb8):
    return rgb_to_lab(tf.constant(rgb8[..., :3] / 255.0, tf.float32)).numpy()


def test_variants_are_seeded_differ_from_each_other_and_keep_the_luminance(hinted):
    photo = _photo()
    first = hinted.colorize_variants(photo, 4, seed=7)
    again = hinted.colorize_variants(photo, 4, seed=7)
    other = hinted.colorize_variants(photo, 4)  # no seed: new variants
    assert all(np.array_equal(a.image, b.image) and a.hints == b.hints for a, b in zip(first, again))
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(first, other))
    gray_l = _lab(np.repeat(photo[..., None], 3, -1))[..., 0]
    abs_ = [_lab(v.image)[..., 1:] for v in first]
    spreads = [np.linalg.norm(abs_[i] - abs_[j], axis=-1).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(spreads) > 1.0, spreads  # every pair visibly different somewhere
    for v in first:
        assert v.image.shape == photo.shape + (3,) and v.image.dtype == np.uint8
        assert np.abs(_lab(v.image)[..., 0] - gray_l).mean() < 1.0  # the photo's own luminance
        assert len(v.hints) == VARIANT_POINTS
        assert all(0 <= h.x < photo.shape[1] and 0 <= h.y < photo.shape[0] for h in v.hints)


def test_drawn_hints_turn_the_models_own_hue_by_at_most_the_limit():
    auto = np.zeros((32, 48, 2), np.float32)
    auto[...] = (20.0, 20.0)  # a coloured prediction: hue 45 degrees everywhere
    rng = np.random.default_rng(0)
    for _ in range(20):
        for hint in draw_variant_hints(auto, (64, 96), rng):
            assert 0 <= hint.x < 96 and 0 <= hint.y < 64
            ab = _lab(np.array(hint.rgb, np.uint8)[None, None])[0, 0, 1:]
            turn = np.rad2deg(np.angle(np.exp(1j * (np.arctan2(ab[1], ab[0]) - np.pi / 4))))
            assert abs(turn) <= MAX_TURN_DEGREES + 3  # + the 8-bit colour's rounding
            assert CHROMA_RANGE[0] - 3 <= np.hypot(*ab) <= CHROMA_RANGE[1] + 3


def test_the_users_hints_are_kept_in_every_variant(hinted):
    mine = parse_hint("20,30,#c03020")
    variants = hinted.colorize_variants(_photo(1), 3, seed=2, hints=[mine])
    assert all(v.hints[0] == mine and len(v.hints) == VARIANT_POINTS + 1 for v in variants)
    ab = _lab(variants[0].image)[28:33, 18:23, 1].mean()
    assert ab > _lab(hinted.colorize(_photo(1)))[28:33, 18:23, 1].mean() + 3  # toward red where the hint is


def test_files_driver_writes_each_variant_with_hints_that_colorize_it_again(hinted, tmp_path):
    photo = tmp_path / "in" / "wall.png"
    photo.parent.mkdir()
    Image.fromarray(_photo(2)).save(photo)
    out = tmp_path / "out"
    assert not colorize_jobs(hinted, [(photo, Path("wall.png"))], out, variants=2, seed=11)
    assert sorted(p.name for p in out.iterdir()) == ["wall_variant1.hints.json", "wall_variant1.png",
                                                     "wall_variant2.hints.json", "wall_variant2.png"]
    by_name = load_hints_file(out / "wall_variant2.hints.json")
    assert json.loads((out / "wall_variant2.hints.json").read_text())["wall.png"][0]["color"].startswith("#")
    again = tmp_path / "again"
    assert not colorize_jobs(hinted, [(photo, Path("wall.png"))], again, hints=lambda src: by_name[src.name])
    redo, variant = (np.asarray(Image.open(p)).astype(int) for p in (again / "wall.png", out / "wall_variant2.png"))
    assert np.abs(redo - variant).max() <= 1  # the hints file reproduces the variant (hint colours are 8-bit)


def test_hints_round_trip_through_json():
    for hint in (Hint(3.0, 4.0, (10, 200, 30)), Hint(0.25, 0.5, (255, 0, 0), True)):
        assert parse_hint(hint.as_json()) == hint


def test_bad_variant_requests_are_one_line_errors(hinted, tmp_path):
    for bad in (0, MAX_VARIANTS + 1, 2.5, True, "3"):
        with pytest.raises(ColorganError, match="variants: give a whole number"):
            check_variant_count(bad)
    with pytest.raises(ColorganError, match="trained with --hints"):
        Colorizer.load(ROOT / "weights").colorize_variants(_photo(), 2)
    from test_video import write_clip
    clip = write_clip(tmp_path / "clip.mp4", [np.zeros((16, 16, 3), np.uint8)] * 2)
    failed = colorize_jobs(hinted, [(clip, Path("clip.mp4"))], tmp_path / "out", variants=2)
    assert "--variants is for photos" in failed[0][1]


def test_the_http_api_gives_variants_whose_hints_colorize_them_again(hinted):
    import base64
    import io
    testclient = pytest.importorskip("fastapi.testclient")
    from colorgan.serving.server import ColorizerBackend, Limits, create_app
    photo = io.BytesIO()
    Image.fromarray(_photo(3)).save(photo, format="PNG")
    with testclient.TestClient(create_app(ColorizerBackend(hinted, "hints"), Limits())) as client:
        first = client.post("/v1/variants?k=3&seed=5", content=photo.getvalue())
        again = client.post("/v1/variants?k=3&seed=5", content=photo.getvalue())
        assert first.status_code == 200 and first.json() == again.json()
        answer = first.json()
        assert answer["media_type"] == "image/png" and len(answer["variants"]) == 3
        images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(v["image"])))) for v in answer["variants"]]
        assert all(im.shape == (96, 144, 3) for im in images) and not np.array_equal(images[0], images[1])
        hints = answer["variants"][1]["hints"]
        assert len(hints) == VARIANT_POINTS and all(0 <= h["x"] <= 1 and 0 <= h["y"] <= 1 for h in hints)
        query = ";".join(f"{h['x']},{h['y']},{h['color'].replace('#', '%23')}" for h in hints)
        redo = client.post(f"/v1/colorize?hints={query}", content=photo.getvalue())
        assert np.abs(np.asarray(Image.open(io.BytesIO(redo.content))).astype(int) - images[1]).max() <= 1
        for bad, words in (("k=0", "whole number"), ("k=x", "whole number"), ("seed=-1", "seed must be"),
                           ("n=3", "unknown parameter")):
            refused = client.post(f"/v1/variants?{bad}", content=photo.getvalue())
            assert refused.status_code == 400 and words in refused.json()["error"], refused.json()
    with testclient.TestClient(create_app(ColorizerBackend(Colorizer.load(ROOT / "weights"), "auto"), Limits())) as c:
        refused = c.post("/v1/variants", content=photo.getvalue())
        assert refused.status_code == 400 and "without --hints" in refused.json()["error"]
