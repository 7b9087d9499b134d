"""Colour hints (--hints): simulated from the truth for training, taken by the generator beside the gray photo,
and given by users as X,Y,COLOR points on their photos (colorize.py --hint, Colorizer.colorize(hints=))."""
import json
from pathlib import Path
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from colorgan.color.hints import HINT_P, paint_hints, simulate_hints
from colorgan.config import Config
from colorgan.errors import ColorganError
from colorgan.inference.colorizer import Colorizer
from colorgan.inference.hints import Hint, hint_map, load_hints_file, parse_hint
from colorgan.models.networks import hint_channels
from colorgan.training import loop as training
from colorgan.training.trainers import build_trainer
from conftest import ROOT, SAMPLE, tiny_config


def _is_one_square(mask) -> bool:
    """Whether a hint mask [H, W] is one filled square patch of side 1 to 9 (cut where it meets the border)."""
    ys, xs = np.nonzero(np.asarray(mask) > 0)
    if not len(ys):
        return False
    box = np.zeros_like(mask, bool)
    box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    return bool((box == (np.asarray(mask) > 0)).all()) and max(np.ptp(ys), np.ptp(xs)) < 9


# ---- simulation ---------------------------------------------------------------------------------------------
def test_a_fixed_count_paints_that_many_patch_means():
    ab = tf.random.stateless_uniform([6, 40, 40, 2], [1, 2], -1, 1)
    hints = simulate_hints(ab, [3, 4], count=1).numpy()
    for image, h in zip(ab.numpy(), hints):
        mask = h[..., 2] > 0
        assert _is_one_square(mask)
        # one patch: its painted ab is the mean of the true ab under it, nothing painted outside it
        np.testing.assert_allclose(h[mask][:, :2], np.broadcast_to(image[mask].mean(0), (mask.sum(), 2)), atol=1e-5)
        assert not h[~mask].any()
    assert not simulate_hints(ab, [3, 4], count=0).numpy().any()  # none: all zeros, mask included


def test_drawn_counts_are_geometric_and_include_none():
    ab = tf.ones([800, 16, 16, 2]) * 0.3
    hints = simulate_hints(ab, [5, 6]).numpy()
    none = np.mean(hints[..., 2].reshape(800, -1).max(1) == 0)
    assert abs(none - HINT_P) < 0.04  # P(no hint) = p = 1/8
    # a solid image: every hint carries its colour, with its mask
    assert np.allclose(hints[..., :2][hints[..., 2] > 0], 0.3)


def test_simulation_is_seeded_and_the_same_eagerly_and_in_tf_data():
    ab = tf.random.stateless_uniform([4, 24, 24, 2], [7, 8], -1, 1)
    eager = [simulate_hints(a, [9, i]).numpy() for i, a in enumerate(ab)]
    ds = tf.data.Dataset.from_tensor_slices((ab, tf.range(4))).map(lambda a, i: simulate_hints(a, tf.stack([9, i])))
    for e, d in zip(eager, ds):
        np.testing.assert_array_equal(e, d.numpy())
    assert not np.array_equal(eager[0], simulate_hints(ab[0], [9, 99]).numpy())


# ---- user hints -------------------------------------------------------------------------------------------
def test_hints_are_parsed_in_pixels_or_fractions_with_css_colours():
    assert parse_hint("120,80,red") == Hint(120.0, 80.0, (255, 0, 0), False)
    assert parse_hint("0.5, 0.25, #2a6e3f") == Hint(0.5, 0.25, (42, 110, 63), True)
    assert parse_hint({"x": 3, "y": 4, "color": "navy"}) == Hint(3.0, 4.0, (0, 0, 128), False)
    for bad, says in [("1,2", "X,Y,COLOR"), ("a,2,red", "not a number"), ("1,2,blurple", "CSS colour name"),
                      ("0.5,20,red", "both coordinates"), ("-1,2,red", "pixel"), (7, "X,Y,COLOR")]:
        with pytest.raises(ColorganError, match=says):
            parse_hint(bad)


def test_a_hint_in_a_corner_of_a_non_square_photo_lands_in_that_corner():
    # a 90 x 300 photo worked at 32 x 96: its top-right pixel and its bottom-left fraction
    m = hint_map([parse_hint("299,0,red"), parse_hint("0.0,1.0,blue")], (90, 300), (32, 96))
    assert m.shape == (32, 96, 3)
    assert m[0, 95, 2] == 1 and m[0, 95, 0] > 0.5  # red: a > 0
    assert m[31, 0, 2] == 1 and m[31, 0, 1] < -0.5  # blue: b < 0
    assert m[16, 48, 2] == 0
    with pytest.raises(ColorganError, match="outside the 300x90 photo"):
        hint_map([parse_hint("300,10,red")], (90, 300), (32, 96))


def test_a_hints_file_is_read_and_bad_ones_are_one_line_errors(tmp_path):
    good = tmp_path / "h.json"
    good.write_text(json.dumps({"a.jpg": ["1,2,red", {"x": 0.5, "y": 0.5, "color": "#00ff00"}]}))
    assert [h.rgb for h in load_hints_file(good)["a.jpg"][0]] == [(255, 0, 0), (0, 255, 0)]  # a list: frame 0
    good.write_text(json.dumps({"clip.mp4": {"0": ["1,2,red"], "48": [], "120": ["0.5,0.5,blue"]}}))
    assert {f: [h.rgb for h in hs] for f, hs in load_hints_file(good)["clip.mp4"].items()} == \
        {0: [(255, 0, 0)], 48: [], 120: [(0, 0, 255)]}
    for text, says in [("{", "not valid JSON"), ("[1, 2]", "object from photo names"),
                       ('{"a.jpg": "1,2,red"}', "a list of hints"), ('{"v.mp4": {"x": []}}', "not a frame number")]:
        good.write_text(text)
        with pytest.raises(ColorganError, match=says):
            load_hints_file(good)
    with pytest.raises(ColorganError, match="no such file"):
        load_hints_file(tmp_path / "missing.json")


# ---- models -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("generator", ["unet", "effnet-lite0"])
def test_a_hint_model_started_from_one_without_hints_colours_alike_without_hints(generator, tmp_path):
    source = training.train(tiny_config(classes=["horse"], model="unet-l1", generator=generator, epochs=1,
                                        steps_per_epoch=1, val_steps=1, checkpoint_dir=str(tmp_path), run_name="plain"),
                            verbose=0)
    cfg = tiny_config(model="unet-l1", generator=generator, hints=True, init_from=str(source)).resolved(32)
    model = build_trainer(cfg)
    from colorgan.training.runs import init_generator
    init_generator(model.generator, cfg)
    plain = keras.models.load_model(source / "generator.keras")
    assert hint_channels(model.generator) == 3 and hint_channels(plain) == 0
    gray = tf.random.stateless_uniform([2, 32, 32, 1], [1, 1], -1, 1)
    np.testing.assert_allclose(model(gray).numpy(), plain(gray, training=False).numpy(), atol=1e-5)


def test_a_hint_model_trains_resumes_and_colorizes_with_and_without_hints(tmp_path):
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", hints=True, epochs=1, steps_per_epoch=2,
                                     val_steps=1, checkpoint_dir=str(tmp_path), run_name="hints"), verbose=0)
    assert Config.load(run / "config.json").hints is True
    training.resume(run, epochs=2, verbose=0)
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3
    colorizer = Colorizer.load(run)
    photo = (np.random.default_rng(0).random((40, 70)) * 255).astype(np.uint8)
    assert colorizer.colorize(photo).shape == colorizer.colorize(photo, hints=["5,5,red"]).shape == (40, 70, 3)
    with pytest.raises(ColorganError, match="outside"):
        colorizer.colorize(photo, hints=["80,5,red"])


def test_a_model_without_hints_refuses_them():
    colorizer = Colorizer.load()
    with pytest.raises(ColorganError, match="trained without --hints"):
        colorizer.colorize(np.zeros((32, 32), np.uint8), hints=["1,1,red"])
    done = subprocess.run([sys.executable, str(ROOT / "colorize.py"), "--hint", "1,1,red",
                           str(SAMPLE)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].endswith("cannot take colour hints")


def _two_region_batch(seed: int, n: int = 16):
    """Photos of two flat regions split at a random column (a step in gray between them), each its own random
    colour: nothing in the gray says which, so only a hint can."""
    rng = np.random.default_rng(seed)
    gray, target = np.zeros((n, 32, 32, 1), np.float32), np.zeros((n, 32, 32, 2), np.float32)
    for i in range(n):
        split = rng.integers(8, 24)
        gray[i, :, :split], gray[i, :, split:] = -0.3, 0.3
        target[i, :, :split], target[i, :, split:] = rng.uniform(-0.6, 0.6, 2), rng.uniform(-0.6, 0.6, 2)
    return gray, target


def test_a_trained_hint_colours_its_region_toward_it_and_leaves_the_other_alone():
    keras.utils.set_random_seed(3)
    model = build_trainer(tiny_config(model="unet-l1", hints=True, lr=2e-3).resolved(32))
    ds = tf.data.Dataset.from_generator(lambda: (_two_region_batch(s) for s in range(10 ** 6)),
                                        output_signature=(tf.TensorSpec([16, 32, 32, 1]),
                                                          tf.TensorSpec([16, 32, 32, 2])))
    model.fit(ds, steps_per_epoch=300, epochs=1, verbose=0)
    gray = np.zeros((1, 32, 32, 1), np.float32)
    gray[0, :, :16], gray[0, :, 16:] = -0.3, 0.3
    colour = np.array([0.5, -0.4], np.float32)
    hint = paint_hints([(16, 4, *colour)], 32, 32)[None]
    alone = model.generator(np.concatenate([gray, 0 * hint], -1), training=False).numpy()[0]
    hinted = model.generator(np.concatenate([gray, hint], -1), training=False).numpy()[0]
    near = np.linalg.norm(alone[:, :12].mean((0, 1)) - colour), np.linalg.norm(hinted[:, :12].mean((0, 1)) - colour)
    assert near[1] < 0.85 * near[0]  # the hinted region moved toward the hint's colour (300 steps: part way)
    far = np.linalg.norm(hinted[:, 20:].mean((0, 1)) - alone[:, 20:].mean((0, 1)))
    assert far < 0.2 * (near[0] - near[1])  # the region across the edge barely moved


def test_evaluate_gives_hint_models_points_from_the_truth_and_others_none(tmp_path):
    from colorgan.evaluation.scores import evaluate_run
    from colorgan.training.runs import load_run
    runs = {hints: load_run(training.train(tiny_config(classes=["horse"], model="unet-l1", hints=hints, epochs=1,
                                                       steps_per_epoch=1, val_steps=1, checkpoint_dir=str(tmp_path),
                                                       run_name=f"h{hints}"), verbose=0))
            for hints in (True, False)}
    scored = {(h, n): evaluate_run(runs[h], limit=16, progress=False, hints=n) for h in runs for n in (0, 5)}
    name = {h: runs[h].name for h in runs}
    assert scored[True, 5]["hints"] == 5 and scored[True, 0]["hints"] == 0 and scored[False, 5]["hints"] == 0
    assert scored[True, 5]["rows"][name[True]] != scored[True, 0]["rows"][name[True]]
    assert scored[False, 5]["rows"] == scored[False, 0]["rows"]
    assert evaluate_run(runs[True], limit=16, progress=False, hints=5)["rows"] == scored[True, 5]["rows"]  # seeded


def test_the_http_api_takes_hints_for_a_hint_model(tmp_path):
    import io

    from PIL import Image
    testclient = pytest.importorskip("fastapi.testclient")
    from colorgan.serving.server import ColorizerBackend, Limits, create_app
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", hints=True, epochs=1, steps_per_epoch=1,
                                     val_steps=1, checkpoint_dir=str(tmp_path), run_name="served"), verbose=0)
    photo = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((40, 60)) * 255).astype(np.uint8)).save(photo, format="PNG")
    app = create_app(ColorizerBackend(Colorizer.load(run), "hints"), Limits())
    with testclient.TestClient(app) as client:
        assert client.get("/v1/info").json()["hints"] is True
        plain = client.post("/v1/colorize", content=photo.getvalue())
        hinted = client.post("/v1/colorize?hints=5,5,red;0.9,0.9,%230000ff", content=photo.getvalue())
        assert plain.status_code == hinted.status_code == 200 and plain.content != hinted.content
        local = Colorizer.load(run).colorize(np.asarray(Image.open(photo)), hints=["5,5,red", "0.9,0.9,#0000ff"])
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(hinted.content))), local)
        bad = client.post("/v1/colorize?hints=70,5,red", content=photo.getvalue())
        assert bad.status_code == 400 and "outside the 60x40 photo" in bad.json()["error"]


def test_the_shipped_hint_model_moves_colour_toward_a_hint_where_it_is_placed():
    """weights/hints/: a red hint on a flat gray wall makes the wall there red-ish and leaves the far corner."""
    colorizer = Colorizer.load(ROOT / "weights" / "hints")
    assert colorizer.takes_hints
    photo = np.full((128, 192), 140, np.uint8)
    photo[:, 96:] = 90  # a second, darker wall past an edge
    from colorgan.color.lab import rgb_to_lab
    ab = [rgb_to_lab(tf.constant(colorizer.colorize(photo, hints=h) / 255.0, tf.float32)).numpy()[..., 1:]
          for h in ([], ["40,64,#c03020"])]
    near = ab[1][54:74, 30:50].mean((0, 1)) - ab[0][54:74, 30:50].mean((0, 1))
    assert near[0] > 5  # toward red (a up)
    assert np.abs(ab[1][:20, 172:] - ab[0][:20, 172:]).mean() < 0.5 * np.abs(near).max()


def test_a_hint_model_exports_as_a_saved_model_and_tflite_that_colorize_without_hints(tmp_path):
    from colorgan.inference.export_formats import export, load_exported
    run = training.train(tiny_config(classes=["horse"], model="unet-l1", hints=True, epochs=1, steps_per_epoch=1,
                                     val_steps=1, checkpoint_dir=str(tmp_path), run_name="exported"), verbose=0)
    colorizer = Colorizer.load(run)
    photo = (np.random.default_rng(2).random((40, 56)) * 255).astype(np.uint8)
    expected = colorizer.colorize(photo).astype(int)
    for fmt in ("saved_model", "tflite"):
        version = export(colorizer, tmp_path / fmt, fmt)
        got = load_exported(version).colorize(photo).astype(int)
        assert np.abs(got - expected).max() <= 2, fmt


def _painted_reference(points, valid, height, width, radius=1):
    """paint_hint_points written the plain way: each valid point's patch painted in order over the earlier ones."""
    out = np.zeros((len(points), height, width, 3), np.float32)
    for n, photo in enumerate(points):
        for (y, x, a, b), ok in zip(photo, valid[n]):
            if ok:
                y, x = int(round(y)), int(round(x))
                out[n, max(y - radius, 0):max(y + radius + 1, 0), max(x - radius, 0):max(x + radius + 1, 0)] = (a, b, 1)
    return out


def test_hint_points_are_painted_in_order_eagerly_in_a_graph_and_in_tf_data():
    from colorgan.color.hints import paint_hint_points
    rng = np.random.default_rng(4)
    points = np.concatenate([rng.uniform(-2, 13, (3, 9, 2)), rng.uniform(-1, 1, (3, 9, 2))], -1).astype(np.float32)
    points[0, 1, :2] = points[0, 0, :2] + 1  # overlapping patches: the later point wins where they meet
    valid = rng.random((3, 9)) > 0.3
    expected = _painted_reference(points, valid, 11, 14)
    np.testing.assert_allclose(paint_hint_points(points, 11, 14, valid).numpy(), expected, atol=1e-7)
    graph = tf.function(lambda p, v: paint_hint_points(p, 11, 14, v))
    np.testing.assert_allclose(graph(points, valid).numpy(), expected, atol=1e-7)
    mapped = next(iter(tf.data.Dataset.from_tensors((points, valid)).map(lambda p, v: paint_hint_points(p, 11, 14, v))))
    np.testing.assert_allclose(mapped.numpy(), expected, atol=1e-7)
    assert not paint_hint_points(np.zeros((2, 0, 4), np.float32), 5, 6).numpy().any()  # no points: no hints


def _trained_hint_run(tmp_path, name):
    return training.train(tiny_config(classes=["horse"], model="unet-l1", hints=True, epochs=1, steps_per_epoch=1,
                                      val_steps=1, checkpoint_dir=str(tmp_path), run_name=name), verbose=0)


def test_a_hint_models_saved_model_takes_hints_in_its_own_signature(tmp_path):
    from colorgan.inference.export import export_saved_model
    colorizer = Colorizer.load(_trained_hint_run(tmp_path, "exported"))
    photos = (np.random.default_rng(2).random((2, 40, 56, 1)) * 255).astype(np.uint8)
    loaded = tf.saved_model.load(str(export_saved_model(colorizer, tmp_path / "sm")))
    assert set(loaded.signatures) == {"serving_default", "colorize", "colorize_hints"}
    # photo 0: two hints; photo 1: one, padded with a row outside the photo
    rows = np.array([[[5, 7, 200, 30, 20], [50, 30, 20, 40, 220]], [[10, 20, 30, 200, 40], [-1, -1, 0, 0, 0]]],
                    np.float32)
    out = loaded.signatures["colorize_hints"](images=tf.constant(photos), hints=tf.constant(rows),
                                              vividness=tf.constant(1.0))["colorized"].numpy().astype(int)
    for n, hints in enumerate([["5,7,#c81e14", "50,30,#1428dc"], ["10,20,#1ec828"]]):
        local = colorizer.colorize(photos[n], vividness=1.0, hints=hints).astype(int)
        assert np.abs(out[n] - local).max() <= 2, n
    plain = loaded.signatures["serving_default"](images=tf.constant(photos))["colorized"].numpy().astype(int)
    assert np.abs(plain[0] - colorizer.colorize(photos[0]).astype(int)).max() <= 2  # today's clients unchanged
    assert np.abs(out[0] - plain[0]).max() > 2  # the hints changed the colour


@pytest.mark.parametrize("served", ["run", "saved_model"])
def test_the_predict_route_takes_hints_per_image_in_the_colorize_hints_signature(served, tmp_path):
    testclient = pytest.importorskip("fastapi.testclient")
    from colorgan.inference.export import export_saved_model
    from colorgan.serving.server import ColorizerBackend, Limits, SavedModelBackend, create_app
    colorizer = Colorizer.load(_trained_hint_run(tmp_path, "served"))
    backend = ColorizerBackend(colorizer, "hints") if served == "run" \
        else SavedModelBackend(export_saved_model(colorizer, tmp_path / "sm"))
    photos = (np.random.default_rng(3).random((2, 32, 48, 1)) * 255).astype(np.uint8)
    rows = [[[4, 4, 220, 20, 20], [40, 25, 20, 20, 220]], [[-1, -1, 0, 0, 0], [-1, -1, 0, 0, 0]]]
    with testclient.TestClient(create_app(backend, Limits())) as client:
        meta = client.get("/v1/models/colorgan/metadata").json()["metadata"]["signature_def"]["signature_def"]
        assert sorted(meta["colorize_hints"]["inputs"]) == ["hints", "images", "vividness"]
        body = {"signature_name": "colorize_hints",
                "inputs": {"images": photos.tolist(), "vividness": 1.0, "hints": rows}}
        got = np.array(client.post("/v1/models/colorgan:predict", json=body).json()["outputs"])
        hinted = colorizer.colorize(photos[0], vividness=1.0, hints=["4,4,#dc1414", "40,25,#1414dc"]).astype(int)
        assert np.abs(got[0] - hinted).max() <= 2
        assert np.abs(got[1] - colorizer.colorize(photos[1], vividness=1.0).astype(int)).max() <= 2  # padding only
        for bad, words in ((rows[:1], "N = 2"), ([[[4, 4, 300, 0, 0]]] * 2, "0 to 255"), ("red", "[N, K, 5]")):
            body["inputs"]["hints"] = bad
            answer = client.post("/v1/models/colorgan:predict", json=body)
            assert answer.status_code == 400 and words in answer.json()["error"], answer.json()


def test_video_hints_hold_from_their_frame_to_the_next_scene_cut(tmp_path):
    from colorgan.inference.files import colorize_jobs
    from colorgan.inference.video import SteadyColorizer, read_video
    from test_video import write_clip
    colorizer = Colorizer.load(_trained_hint_run(tmp_path, "video"))
    hinted = []
    predict = colorizer.predict_ab

    def spy(model_in, vividness, hints=None):
        hinted.append(hints is not None and bool(hints[..., 2].any()))
        return predict(model_in, vividness, hints)
    colorizer.predict_ab = spy
    scene_a = np.tile(np.linspace(60, 200, 48, dtype=np.uint8), (32, 1))
    scene_b = np.full((32, 48), 20, np.uint8)  # far from scene a's luminance histogram: a cut
    frames = [scene_a, scene_a, scene_a, scene_b, scene_b, scene_a, scene_a]
    steady = SteadyColorizer(colorizer, hints={0: parse_hints_list(["2,2,red"]), 4: parse_hints_list(["3,3,blue"])})
    outputs = [steady(f) for f in frames]
    # frame 0's hints through frames 1-2, gone at the cut (3), frame 4's own, gone at the cut back (5, 6)
    assert hinted == [True, True, True, False, True, False, False]
    plain = SteadyColorizer(colorizer)(scene_a)
    assert np.abs(outputs[0].astype(int) - plain.astype(int)).max() > 0
    with pytest.raises(ColorganError, match="without --hints"):
        SteadyColorizer(Colorizer.load(ROOT / "weights"), hints={0: parse_hints_list(["2,2,red"])})
    # through the files driver, as colorize.py runs it: a video takes its hints by frame, a photo refuses later frames
    clip = write_clip(tmp_path / "clip.mp4", [np.repeat(f[..., None], 3, -1) for f in frames])
    hinted.clear()
    failed = colorize_jobs(colorizer, [(clip, Path("clip.mp4"))], tmp_path / "out",
                           hints=lambda src: {0: parse_hints_list(["2,2,red"])})
    assert not failed and len(read_video(tmp_path / "out" / "clip.mp4")[0]) == len(frames)
    assert hinted[:3] == [True] * 3 and not any(hinted[3:])
    photo = tmp_path / "p.png"
    Image.fromarray(scene_a).save(photo)
    failed = colorize_jobs(colorizer, [(photo, Path("p.png"))], tmp_path / "out",
                           hints=lambda src: {5: parse_hints_list(["2,2,red"])})
    assert "frame numbers are for videos" in failed[0][1]


def parse_hints_list(specs):
    from colorgan.inference.hints import parse_hints
    return parse_hints(specs)
