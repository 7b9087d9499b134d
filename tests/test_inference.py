import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from colorgan import Colorizer
from colorgan.training import loop as training
from colorgan.color.lab import rgb_to_lab
from colorgan.errors import ColorganError
from colorgan.inference.export import export_saved_model
from colorgan.inference.files import expand_inputs
from colorgan.data.image_files import read_image
from conftest import ROOT, sample_images, tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = tiny_config(classes=["horse"], epochs=1, base_filters=4, num_samples=0,
                      checkpoint_dir=str(tmp_path_factory.mktemp("ck")), run_name="tiny")
    return training.train(cfg, verbose=0)


@pytest.fixture(scope="module")
def colorizer(tiny_run):
    return Colorizer.load(tiny_run)


def photo(h, w, seed=0):
    """A real photo resized to h x w (uint8 RGB)."""
    img = cv2.imread(str(sample_images(4)[seed]))[..., ::-1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def lightness(rgb_uint8):
    return rgb_to_lab(rgb_uint8.astype(np.float32) / 255.0).numpy()[..., 0]


@pytest.mark.parametrize("h, w", [(1, 1), (2, 3), (37, 53), (32, 32), (301, 97)])
def test_output_keeps_size_and_luminance(colorizer, h, w):
    image = photo(h, w)
    out = colorizer.colorize(image)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    assert np.abs(lightness(out) - lightness(gray)).mean() / 100.0 < 2 / 255


def test_very_large_image(colorizer):
    out = colorizer.colorize(np.full((3000, 4000, 3), 128, np.uint8))
    assert out.shape == (3000, 4000, 3)


def test_gray_inputs_and_alpha(colorizer):
    rgb = photo(40, 60)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    from_gray = colorizer.colorize(gray)
    np.testing.assert_array_equal(colorizer.colorize(gray[..., None]), from_gray)
    np.testing.assert_array_equal(colorizer.colorize(np.repeat(gray[..., None], 3, axis=-1)), from_gray)
    rgba = np.concatenate([rgb, np.arange(40 * 60, dtype=np.uint8).reshape(40, 60, 1)], axis=-1)
    out = colorizer.colorize(rgba)
    assert out.shape == (40, 60, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    deep = (gray.astype(np.uint16) * 257)  # 16-bit gray with the same values
    assert np.abs(colorizer.colorize(deep).astype(int) - from_gray).max() <= 1


def test_three_steps_give_what_colorize_gives(colorizer):
    """prepare -> predict_ab (a batch of photos of different sizes sharing a working size) -> finish."""
    rgba = np.dstack([photo(40, 60, seed=3), np.full((40, 60), 7, np.uint8)])
    photos = [photo(40, 60, seed=1), photo(44, 64, seed=2)[..., :1], rgba]
    prepared = [colorizer.prepare(p) for p in photos]
    assert len({p.model_in.shape for p in prepared}) == 1
    vividness = np.array([1.0, 2.0, 0.5], np.float32)
    ab = colorizer.predict_ab(np.concatenate([p.model_in for p in prepared]), vividness)
    for image, prep, v, a in zip(photos, prepared, vividness, ab):
        staged = colorizer.finish(prep, a)
        whole = colorizer.colorize(image, vividness=float(v))
        assert staged.shape == whole.shape and np.abs(staged.astype(int) - whole).max() <= 1


def test_bad_arrays_are_rejected(colorizer):
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4), np.int64)):
        with pytest.raises(ColorganError):
            colorizer.colorize(bad)


def test_read_image_formats(tmp_path):
    rgb = photo(20, 30)
    cv2.imwrite(str(tmp_path / "deep.png"), (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257))
    assert read_image(tmp_path / "deep.png").dtype == np.uint16
    Image.fromarray(np.concatenate([rgb, np.full((20, 30, 1), 7, np.uint8)], -1)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (20, 30, 4)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert read_image(tmp_path / "cmyk.jpg").shape == (20, 30, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (30, 20, 3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(ColorganError, match="broken.jpg"):
        read_image(tmp_path / "broken.jpg")


def test_expand_inputs_folders_globs_and_clashes(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    for p in ("a/x.jpg", "a/sub/y.png", "a/notes.txt", "b/x.jpg"):
        (tmp_path / p).write_bytes(b"")
    jobs = expand_inputs([str(tmp_path / "a"), str(tmp_path / "b" / "*.jpg")])
    assert [str(rel) for _, rel in jobs] == ["sub/y.png", "x.jpg", "x-1.jpg"]
    with pytest.raises(ColorganError, match="no such file"):
        expand_inputs([str(tmp_path / "nothing*.png")])


def test_output_target_is_a_file_for_one_photo_named_as_a_photo(tmp_path):
    from colorgan.inference.files import output_target
    photo_, clip = (tmp_path / "a.jpg", Path("a.jpg")), (tmp_path / "c.mp4", Path("c.mp4"))
    assert output_target([photo_], tmp_path / "r.png") == ([(photo_[0], Path("r.png"))], tmp_path)
    assert output_target([clip], tmp_path / "r.MOV") == ([(clip[0], Path("r.MOV"))], tmp_path)
    # a folder otherwise: several inputs, a name without an image suffix, a video name for a photo, a folder
    (tmp_path / "made.png").mkdir()
    for jobs, out in (([photo_, clip], "r.png"), ([photo_], "out"), ([photo_], "r.mp4"), ([clip], "r.png"),
                      ([photo_], "made.png")):
        assert output_target(jobs, tmp_path / out) == (jobs, tmp_path / out)


def test_colorize_cli_writes_one_photo_as_the_file_named(tiny_run, tmp_path, capsys):
    from colorgan.commands.colorize import main
    Image.fromarray(photo(24, 40)).save(tmp_path / "p.jpg")
    assert main([str(tmp_path / "p.jpg"), "--run", str(tiny_run), "-o", str(tmp_path / "out" / "result.png")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["result.png"]
    written = Image.open(tmp_path / "out" / "result.png")
    assert written.format == "PNG" and written.size == (40, 24)
    assert f"as {tmp_path / 'out' / 'result.png'}" in capsys.readouterr().out


def test_colorize_cli_skips_broken_files_and_exits_nonzero(tiny_run, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(photo(24 + i, 40)).save(folder / f"p{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = subprocess.run([sys.executable, str(ROOT / "colorize.py"), str(folder), "--run", str(tiny_run),
                          "-o", str(tmp_path / "out"), "--side-by-side"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "colorized 3 of 4" in out.stdout and "broken.jpg" in out.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"p{i}.jpg" for i in range(3)] + [f"p{i}_side_by_side.jpg" for i in range(3)])
    assert Image.open(tmp_path / "out" / "p2.jpg").size == (40, 26)
    assert Image.open(tmp_path / "out" / "p2_side_by_side.jpg").size == (80, 26)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ColorganError, match="no such model"):
        Colorizer.load(tmp_path / "nothing")


@pytest.fixture(scope="module")
def exported(colorizer, tmp_path_factory):
    """The colorizer exported as a SavedModel: (the folder given, the version folder written)."""
    out_dir = tmp_path_factory.mktemp("exported") / "colorgan"
    return out_dir, export_saved_model(colorizer, out_dir)


def saved_model_cli() -> str:
    """TensorFlow's saved_model_cli for the Python running the tests, found without activating its environment."""
    beside = Path(sys.executable).parent / ("saved_model_cli.exe" if os.name == "nt" else "saved_model_cli")
    if beside.is_file():
        return str(beside)
    found = shutil.which("saved_model_cli")
    if found:
        return found
    pytest.skip(f"saved_model_cli is neither beside {sys.executable} nor on PATH")


def test_saved_model_matches_colorizer_in_a_clean_process(colorizer, exported, tmp_path):
    out_dir, target = exported
    assert target == out_dir / "1" and (target / "saved_model.pb").exists()
    images = np.stack([photo(45, 70, 0), photo(45, 70, 1)])
    np.save(tmp_path / "in.npy", images)
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "assert 'colorgan' not in sys.modules\n"
            f"f = tf.saved_model.load({str(target)!r}).signatures['serving_default']\n"
            f"x = np.load({str(tmp_path / 'in.npy')!r})\n"
            f"np.save({str(tmp_path / 'out.npy')!r}, f(images=tf.constant(x))['colorized'].numpy())\n"
            "try:\n    f(images=tf.zeros((1, 8, 8, 2), tf.uint8))\n    print('accepted 2 channels')\n"
            "except tf.errors.InvalidArgumentError:\n    print('rejected 2 channels')\n"
            "for name, bad in (('float32', tf.zeros((1, 8, 8, 3), tf.float32)), ('rank 3', tf.zeros((8, 8, 3), tf.uint8))):\n"
            "    try:\n        f(images=bad)\n        print('accepted', name)\n"
            "    except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:\n"
            "        print('rejected', name, '|', str(e).splitlines()[0][:300])\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rejected 2 channels" in out.stdout
    assert "rejected float32" in out.stdout and "rejected rank 3" in out.stdout, out.stdout
    served = np.load(tmp_path / "out.npy")
    expected = np.stack([colorizer.colorize(im) for im in images])
    assert served.shape == expected.shape == (2, 45, 70, 3)
    assert np.abs(served.astype(int) - expected).max() <= 2


def test_saved_model_cli_shows_the_serving_signature(exported):
    _, target = exported
    cli = subprocess.run([saved_model_cli(), "show", "--dir", str(target), "--all"], capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "serving_default" in cli.stdout and "colorized" in cli.stdout


def test_bfloat16_generator_loads_in_float32_for_cpus_that_emulate_it(tmp_path, monkeypatch):
    """Shipped weights are stored in bfloat16; where the CPU has no bfloat16 arithmetic they run in float32."""
    import keras
    from colorgan.inference import colorizer as inference
    from colorgan.models.keras_compat import walk_layers
    from colorgan.models.networks import build_models
    from colorgan.training.runs import load_generator, save_in_bfloat16
    generator, _ = build_models(tiny_config(model="unet-l1", precision="bf16"))
    generator.save(tmp_path / "generator.keras")
    tiny_config(model="unet-l1", precision="bf16", image_size=32).save(tmp_path / "config.json")
    as_saved = load_generator(tmp_path / "generator.keras")
    as_float32 = load_generator(tmp_path / "generator.keras", float32=True)
    assert {w.dtype for w in as_saved.weights} == {"float32"}  # mixed: float32 variables, bfloat16 compute
    assert "bfloat16" in {layer.dtype_policy.compute_dtype for layer in walk_layers(as_saved)}
    assert {layer.dtype_policy.compute_dtype for layer in walk_layers(as_float32)} == {"float32"}
    for a, b in zip(as_saved.weights, as_float32.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    bf16_out = keras.ops.convert_to_numpy(keras.ops.cast(as_saved(x, training=False), "float32"))
    f32_out = keras.ops.convert_to_numpy(as_float32(x, training=False))
    assert f32_out.dtype == np.float32 and np.abs(f32_out - bf16_out).max() < 0.05
    # The Colorizer asks for float32 exactly where the CPU would emulate bfloat16
    for emulated in (True, False):
        monkeypatch.setattr(inference, "inference_in_float32", lambda generator: emulated)
        policies = {layer.dtype_policy.compute_dtype for layer in walk_layers(Colorizer.load(tmp_path).generator)}
        assert ("bfloat16" in policies) != emulated
    fp32_model, _ = build_models(tiny_config(model="unet-l1", precision="fp32"))
    fp32_model.save(tmp_path / "fp32.keras")
    assert len(load_generator(tmp_path / "fp32.keras", float32=True).weights) == len(fp32_model.weights)
    # how weights/ is made: a bfloat16 copy (weights too: half the file) that loads back in float32
    save_in_bfloat16(tmp_path / "fp32.keras", tmp_path / "bf16.keras")
    shipped = load_generator(tmp_path / "bf16.keras")
    assert {w.dtype for w in shipped.weights} == {"bfloat16"}
    assert (tmp_path / "bf16.keras").stat().st_size < 0.6 * (tmp_path / "fp32.keras").stat().st_size
    back = load_generator(tmp_path / "bf16.keras", float32=True)
    assert {w.dtype for w in back.weights} == {"float32"}
    for a, b in zip(fp32_model.weights, back.weights):
        a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        np.testing.assert_allclose(b, a, rtol=2 ** -8, atol=1e-30)  # bfloat16's 8 bits of precision


@pytest.mark.parametrize("tone", ["sepia", "cyanotype"])
def test_a_toned_old_photo_is_read_by_its_luminance_not_its_tint(tone):
    """A sepia- or blue-toned print of a gray photo (its BT.601 luminance kept, a tint added, strongest in the
    mid-tones as toning is) gives the shipped model's colorization of the gray photo itself."""
    colorizer = Colorizer.load()
    gray = np.asarray(Image.open(sample_images(1)[0]).convert("L").resize((96, 64)), np.float32) / 255.0
    cb, cr = {"sepia": (-0.08, 0.07), "cyanotype": (0.12, -0.06)}[tone]
    amount = 4 * gray * (1 - gray)  # no tint at pure black and white, so nothing clips
    r = gray + 1.402 * cr * amount
    g = gray - 0.344136 * cb * amount - 0.714136 * cr * amount
    b = gray + 1.772 * cb * amount
    toned = np.round(np.clip(np.stack([r, g, b], -1), 0, 1) * 255).astype(np.uint8)
    plain = np.round(gray * 255).astype(np.uint8)
    assert np.abs(toned.astype(int) - plain[..., None]).max() > 15  # visibly toned
    difference = np.abs(colorizer.colorize(toned).astype(int) - colorizer.colorize(plain))
    assert difference.max() <= 3 and difference.mean() < 0.5


def test_auto_levels_reads_a_faded_photo_as_its_print_and_keeps_its_luminance():
    """--auto-levels: a faded copy (contrast squeezed to 0.35-0.7) reaches the network with its contrast
    stretched back, and the output keeps the faded photo's own luminance."""
    from colorgan.inference.colorizer import stretch_levels
    photo = np.asarray(Image.open(sample_images(1)[0]).convert("L").resize((96, 64)), np.float32) / 255.0
    faded = np.round((0.35 + 0.35 * photo) * 255).astype(np.uint8)
    plain = Colorizer.load()
    levels = Colorizer.load(auto_levels=True)
    out = levels.colorize(faded)
    l_out, l_in = rgb_to_lab(out / 255.0)[..., 0], rgb_to_lab(np.repeat(faded[..., None], 3, -1) / 255.0)[..., 0]
    assert np.abs(np.asarray(l_out) - np.asarray(l_in)).mean() < 1.0  # its own luminance, not the stretched one
    # the network sees (nearly) the unfaded photo, and so colours it as that photo, not as a gray haze
    original = np.round(photo * 255).astype(np.uint8)
    seen, unfaded = levels.prepare(faded).model_in, plain.prepare(original).model_in
    assert np.abs(seen - unfaded).mean() < 0.25 * np.abs(plain.prepare(faded).model_in - unfaded).mean()
    assert not np.array_equal(out, plain.colorize(faded))
    # the stretch itself: the 1st/99th percentiles go to 0/1; a flat photo is left alone
    stretched = stretch_levels(tf_constant(faded[None, ..., None] / 255.0)).numpy()
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    flat = np.full((1, 8, 8, 1), 0.5, np.float32)
    np.testing.assert_array_equal(stretch_levels(tf_constant(flat)).numpy(), flat)


def tf_constant(x):
    import tensorflow as tf
    return tf.constant(x, tf.float32)


def test_auto_levels_can_be_asked_for_per_photo():
    """The server's per-request auto_levels: Colorizer.colorize(auto_levels=) and prepare(image, auto_levels)
    override the colorizer's own setting, each way."""
    photo = np.asarray(Image.open(sample_images(1)[0]).convert("L").resize((64, 48)))
    faded = np.round(80 + 0.3 * photo).astype(np.uint8)
    plain, levels = Colorizer.load(), Colorizer.load(auto_levels=True)
    np.testing.assert_array_equal(plain.colorize(faded, auto_levels=True), levels.colorize(faded))
    np.testing.assert_array_equal(levels.colorize(faded, auto_levels=False), plain.colorize(faded))
    np.testing.assert_array_equal(plain.prepare(faded, True).model_in, levels.prepare(faded).model_in)
    assert not np.array_equal(plain.prepare(faded).model_in, levels.prepare(faded).model_in)


@pytest.mark.parametrize("small, full", [((16, 12), (121, 97)), ((16, 16), (8, 5)), ((3, 5), (3, 5)), ((1, 1), (7, 4))])
def test_ab_resized_band_by_band_is_the_whole_resize(small, full, monkeypatch):
    """finish resizes the ab a band of rows at a time (ab_rows): the values of one whole tf.image.resize, up and
    down, at the borders too, eagerly and traced; and a photo in many bands equals recombine on the whole of it."""
    import tensorflow as tf
    from colorgan.inference import colorizer as colorizer_module
    from colorgan.inference.colorizer import ab_rows, recombine
    rng = np.random.default_rng(sum(small + full))
    ab = tf.constant(rng.normal(0, 30, (1, *small, 2)).astype(np.float32))
    whole = tf.image.resize(ab, full, method="bilinear").numpy()
    traced = tf.function(ab_rows)
    for top, rows in ((0, 1), (0, full[0]), (full[0] - 1, 1), (full[0] // 2, (full[0] + 1) // 2)):
        for fn in (ab_rows, traced):
            np.testing.assert_allclose(fn(ab, top, rows, *full).numpy(), whole[:, top:top + rows], atol=0.01)
    gray = rng.random((*full, 1)).astype(np.float32)
    c = Colorizer.load(ROOT / "weights")
    expected = np.round(recombine(gray[None], ab).numpy()[0] * 255).astype(int)
    monkeypatch.setattr(colorizer_module, "FINISH_BAND_PIXELS", full[1] * 2)  # bands of two rows
    got = c.finish(colorizer_module.Prepared(gray, None, None), ab.numpy()[0]).astype(int)
    assert np.abs(got - expected).max() <= 1
