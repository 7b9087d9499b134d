"""The web server through FastAPI's test client: every route, every bad request (a 4xx with a JSON error, and
the server still serves), micro-batching and the queue limit, TF Serving compatibility against the SavedModel."""
import io
import re
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from colorgan.serving.batching import MicroBatcher, QueueFull
from colorgan.serving.server import ColorizerBackend, Limits, SavedModelBackend, create_app
from conftest import sample_images

fastapi_testclient = pytest.importorskip("fastapi.testclient")


def encode(array, fmt="PNG", **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(content):
    return np.asarray(Image.open(io.BytesIO(content)))


def chroma(rgb):
    rgb = rgb[..., :3].astype(np.float64)
    return float(np.mean(np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])))


def luma(rgb):
    return rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]


def shipped_vividness() -> float:
    """The shipped model's default vividness, as its config.json records it."""
    from colorgan.config import Config
    from colorgan.training.runs import SHIPPED_WEIGHTS
    return Config.load(SHIPPED_WEIGHTS / "config.json").vividness


@pytest.fixture(scope="module")
def colorizer():
    from colorgan import Colorizer
    return Colorizer.load()  # the shipped weights


@pytest.fixture(scope="module")
def client(colorizer):
    app = create_app(ColorizerBackend(colorizer, "shipped weights"), Limits(max_upload_mb=2, max_pixels=4_000_000))
    with fastapi_testclient.TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo(request):
    """A real everyday photo from ../shared/data (bytes, decoded RGB), else one from the embedded sample."""
    from conftest import SHARED_DATA
    files = sorted((SHARED_DATA / "imagenet-sample").glob("*.jpg"))[:40]
    path = files[7] if files else sample_images(1)[0]
    data = path.read_bytes()
    return data, decode(data)


def assert_error(response, status, *words):
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert isinstance(message, str) and "\n" not in message and "Traceback" not in message
    for w in words:
        assert w in message.lower(), message


# ---- /v1/colorize --------------------------------------------------------------------------------------------
def test_colorize_body_and_multipart(client, photo):
    data, rgb = photo
    raw = client.post("/v1/colorize", content=data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    out = decode(raw.content)
    assert out.shape == rgb.shape
    assert np.abs(luma(out) - luma(rgb)).mean() < 2.0  # the photo's own luminance
    assert chroma(out) > 3.0  # coloured, not gray
    form = client.post("/v1/colorize?format=jpeg", files={"file": ("photo.jpg", data, "image/jpeg")})
    assert form.status_code == 200 and form.headers["content-type"] == "image/jpeg"
    assert decode(form.content).shape == rgb.shape


def test_vividness_raises_saturation_and_keeps_luminance(client, photo):
    data, _ = photo
    outs = [decode(client.post(f"/v1/colorize?vividness={v}", content=data).content) for v in (0.5, 1, 2)]
    sat = [chroma(o) for o in outs]
    assert sat[0] < sat[1] < sat[2]
    from colorgan.color.lab import rgb_to_lab
    lightness = [rgb_to_lab(o[..., :3].astype(np.float32) / 255.0)[..., 0].numpy() for o in outs]
    # the output keeps the photo's L; sRGB clipping of very saturated colours moves it a little in a few pixels
    assert np.median(np.abs(lightness[0] - lightness[2])) < 1.0


def _bomb_png(width, height):
    """A valid PNG header claiming width x height, with almost no data: decoding it would need the pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("body, status, words", [
    (b"", 400, ["empty"]),
    (b"this is not an image", 400, ["not an image"]),
    (_bomb_png(30000, 30000), 413, ["over"]),  # Pillow's own decompression-bomb guard (over 200 MP)
    (_bomb_png(2001, 2000), 413, ["4,002,000 pixels, over the limit of 4,000,000"]),  # the server's --max-pixels
], ids=["empty", "not-an-image", "bomb-900MP", "over-max-pixels"])
def test_bad_images_are_4xx(client, body, status, words):
    assert_error(client.post("/v1/colorize", content=body), status, *words)


def test_truncated_jpeg_is_400(client, photo):
    data, _ = photo
    assert_error(client.post("/v1/colorize", content=data[: len(data) // 2]), 400, "damaged or incomplete")


def test_body_over_the_limit_is_413_from_header_and_while_reading(client):
    big = b"\xff" * 2_500_000
    assert_error(client.post("/v1/colorize", content=big), 413, "limit")
    sent = []

    def chunks():  # no Content-Length: refused once the count passes the limit
        for _ in range(50):
            sent.append(1)
            yield b"\0" * 100_000
    assert_error(client.post("/v1/colorize", content=chunks()), 413, "limit")


def test_auto_levels_colours_a_faded_photo_as_the_colorizer_does_and_keeps_its_luminance(client, colorizer, photo):
    _, rgb = photo
    faded = np.round(64 + 0.4 * luma(rgb)).astype(np.uint8)  # a washed-out print: levels 64-166
    assert client.get("/v1/info").json()["auto_levels"] is True
    assert client.get("/v1/info").json()["cast_correction_per_photo"] is True
    plain = decode(client.post("/v1/colorize", content=encode(faded)).content)
    stretched = decode(client.post("/v1/colorize?auto_levels=1", content=encode(faded)).content)
    assert np.abs(stretched.astype(int) - colorizer.colorize(faded, auto_levels=True)).max() <= 1
    assert np.abs(plain.astype(int) - colorizer.colorize(faded, auto_levels=False)).max() <= 1
    assert np.abs(stretched.astype(int) - plain).mean() > 0.5  # the network saw another photo
    assert np.abs(luma(stretched) - faded).mean() < 2.0  # still the faded photo's own luminance
    assert decode(client.post("/v1/colorize?auto_levels=false", content=encode(faded)).content).tolist() == plain.tolist()


@pytest.mark.parametrize("query, words", [("format=gif", ["format"]), ("vividness=abc", ["vividness"]),
                                          ("auto_levels=maybe", ["auto_levels"]),
                                          ("vividness=-1", ["(0, 4]"]), ("vividness=inf", ["finite"]),
                                          ("size=3", ["unknown parameter"]), ("hints=1,2", ["x,y,color"]),
                                          ("hints=1,2,blurple", ["colour"]),
                                          ("hints=1,1,red", ["trained without --hints"])])
def test_bad_parameters_are_400(client, query, words):
    assert_error(client.post(f"/v1/colorize?{query}", content=encode(np.zeros((8, 8, 3), np.uint8))), 400, *words)


def test_malformed_multipart_is_400(client):
    assert_error(client.post("/v1/colorize", content=b"--x\r\nbroken",
                             headers={"content-type": "multipart/form-data"}), 400, "boundary")


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2, 3)])
def test_tiny_images_are_served_at_their_size(client, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    response = client.post("/v1/colorize", content=encode(image))
    assert response.status_code == 200
    assert decode(response.content).shape[:2] == shape[:2]


def _variants(rgb):
    gray16 = (luma(rgb) * 257).astype(np.uint16)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 100, np.uint8)], axis=-1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the upright photo is height x width
    rotated = io.BytesIO()
    Image.fromarray(rgb).save(rotated, format="JPEG", exif=exif)
    return {
        "16-bit": (encode(gray16), rgb.shape[:2], None),
        "cmyk": (_cmyk(rgb), rgb.shape[:2], None),
        "palette": (_palette(rgb), rgb.shape[:2], None),
        "alpha": (encode(rgba), rgb.shape[:2], 100),
        "exif-rotated": (rotated.getvalue(), rgb.shape[1::-1], None),
    }


def _cmyk(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG")
    return buf.getvalue()


def _palette(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["16-bit", "cmyk", "palette", "alpha", "exif-rotated"])
def test_image_kinds_handled_as_colorize_py(client, photo, kind):
    body, size, alpha = _variants(photo[1])[kind]
    response = client.post("/v1/colorize", content=body)
    assert response.status_code == 200, response.text
    out = decode(response.content)
    assert out.shape[:2] == tuple(size)
    if alpha is not None:
        assert out.shape[-1] == 4 and np.all(out[..., 3] == alpha)


def test_warm_up_leaves_nothing_to_trace_for_requests(colorizer, photo):
    from colorgan import Colorizer
    from colorgan.serving.server import warm_up
    fresh = Colorizer(colorizer.generator, colorizer.color_space, colorizer.render_size, colorizer.vividness)
    backend = ColorizerBackend(fresh, "fresh")
    warm_up(backend)
    functions = (fresh._prepare_fn, fresh._predict_fn, fresh._finish_fn)
    traced = [f.experimental_get_tracing_count() for f in functions]
    prepared = [backend.prepare(image, 1.5) for image in (photo[1], photo[1][::2, ::2], photo[1][:, :, 0])]
    assert len({key for key, _ in prepared}) == 1  # one working size: one batch, as the batcher would make
    jobs = [job for _, job in prepared]
    for job, result in zip(jobs, backend.run(jobs)):
        assert backend.finish(job, result).ndim == 3
    assert [f.experimental_get_tracing_count() for f in functions] == traced


# ---- other routes ---------------------------------------------------------------------------------------------
def test_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for link in ("/static/app.js", "/static/style.css"):
        assert link in page.text
        assert client.get(link).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(["'`]https?:""",
                             text)  # nothing from a CDN: the page works offline
    assert_error(client.get("/static/..%2F..%2Fserve.py"), 404)
    assert_error(client.get("/static/index.html.bak"), 404)


def test_unknown_route_and_wrong_method(client):
    assert_error(client.get("/nowhere"), 404, "no route")
    assert_error(client.get("/v1/colorize"), 405, "not allowed")
    assert_error(client.delete("/healthz"), 405)
    assert_error(client.get("/v1/models/other"), 404, "no model")
    assert_error(client.get("/v1/models/colorgan/versions/2"), 404, "version")
    assert_error(client.post("/v1/models/colorgan:classify", content=b"{}"), 404)
    assert_error(client.get("/v1/models/colorgan:predict"), 405)


def test_health_info_and_model_status(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/info").json()
    assert info["vividness"] == pytest.approx(shipped_vividness()) and info["max_pixels"] == 4_000_000
    status = client.get("/v1/models/colorgan").json()["model_version_status"][0]
    assert status["state"] == "AVAILABLE" and status["status"]["error_code"] == "OK"
    assert client.get("/v1/models/colorgan/versions/1").status_code == 200
    meta = client.get("/v1/models/colorgan/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert set(meta) == {"serving_default", "colorize"}


def test_metrics_count_requests_batches_and_queue(client):
    client.get("/healthz")
    client.get("/nowhere")
    text = client.get("/metrics").text
    assert 'colorgan_requests_total{route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "colorgan_request_seconds_bucket" in text and "colorgan_batch_size_count" in text
    assert "colorgan_queue_length 0.0" in text


# ---- TF Serving's REST API -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(colorizer, tmp_path_factory):
    import tensorflow as tf
    from colorgan.inference.export import export_saved_model
    path = export_saved_model(colorizer, tmp_path_factory.mktemp("exported"))
    return path, tf.saved_model.load(str(path))


def _instances(photo):
    rgb = photo[1][:60, :80]
    return np.stack([rgb, rgb[::-1]])  # two instances of one size, as TF Serving requires


def test_predict_matches_the_saved_model(client, photo, saved_model):
    import tensorflow as tf
    images = _instances(photo)
    body = {"instances": images.tolist()}
    direct = saved_model[1].signatures["serving_default"](images=tf.constant(images))["colorized"].numpy()
    served = np.array(client.post("/v1/models/colorgan:predict", json=body).json()["predictions"], np.uint8)
    assert served.shape == direct.shape == (2, 60, 80, 3)
    assert np.abs(served.astype(int) - direct).max() <= 2
    columnar = client.post("/v1/models/colorgan:predict", json={"inputs": {"images": images.tolist()}})
    assert np.abs(np.array(columnar.json()["outputs"]) - direct).max() <= 2
    named = client.post("/v1/models/colorgan/versions/1:predict",
                        json={"instances": [{"images": im} for im in images.tolist()]})
    assert np.abs(np.array(named.json()["predictions"]) - direct).max() <= 2
    vivid = {"signature_name": "colorize", "inputs": {"images": images.tolist(), "vividness": 2.0}}
    direct_vivid = saved_model[1].signatures["colorize"](images=tf.constant(images),
                                                         vividness=tf.constant(2.0))["colorized"].numpy()
    served_vivid = np.array(client.post("/v1/models/colorgan:predict", json=vivid).json()["outputs"])
    assert np.abs(served_vivid - direct_vivid).max() <= 2 and chroma(served_vivid) > chroma(served)


def test_saved_model_backend_serves_the_same_body(photo, saved_model):
    images = _instances(photo)
    app = create_app(SavedModelBackend(saved_model[0].parent))  # OUT/: the newest version is found
    with fastapi_testclient.TestClient(app) as c:
        served = np.array(c.post("/v1/models/colorgan:predict", json={"instances": images.tolist()})
                          .json()["predictions"])
        assert c.get("/v1/info").json()["vividness"] == pytest.approx(shipped_vividness())  # recorded beside the export
        assert c.post("/v1/colorize", content=photo[0]).status_code == 200
        assert c.get("/v1/info").json()["auto_levels"] is False  # the page hides its checkbox
        assert c.get("/v1/info").json()["cast_correction_per_photo"] is False  # and its tint slider
        assert_error(c.post("/v1/colorize?auto_levels=1", content=photo[0]), 400, "auto_levels", "savedmodel")
    import tensorflow as tf
    direct = saved_model[1].signatures["serving_default"](images=tf.constant(images))["colorized"].numpy()
    assert np.array_equal(served, direct)


@pytest.mark.parametrize("body, words", [
    ([1, 2, 3], ["json object"]),
    ({"instances": [[[1, 2, 3]]]}, ["rank 4"]),
    ({"instances": [[[[1, 2]]]]}, ["channels"]),
    ({"instances": [[[[0.5]]]]}, ["uint8"]),
    ({"instances": [[[[300]]]]}, ["0-255"]),
    ({"instances": [[[["a"]]]]}, ["numbers"]),
    ({"instances": [[[[1]]], [[[1], [2]]]]}, ["ragged"]),
    ({"instances": []}, ["non-empty"]),
    ({"instances": [[[[1]]]], "inputs": [[[[1]]]]}, ["exactly one"]),
    ({"inputs": {"pictures": [[[[1]]]]}}, ["takes inputs"]),
    ({"signature_name": "other", "inputs": [[[[1]]]]}, ["no signature"]),
    ({"signature_name": "colorize", "inputs": {"images": [[[[1]]]], "vividness": "high"}}, ["vividness"]),
    ({"signature_name": "colorize", "instances": [[[[1]]]]}, ["columnar"]),
])
def test_bad_predict_bodies_are_400(client, body, words):
    assert_error(client.post("/v1/models/colorgan:predict", json=body), 400, *words)


def test_predict_rejects_non_json_and_huge_images(client):
    assert_error(client.post("/v1/models/colorgan:predict", content=b"{not json"), 400, "not json")
    huge = {"inputs": np.zeros((1, 1, 4_000_001, 1), np.uint8).tolist()}
    assert_error(client.post("/v1/models/colorgan:predict", json=huge), 413)


def test_still_serving_after_bad_requests(client, photo):
    for body in (b"", b"junk", photo[0][:500]):
        assert client.post("/v1/colorize", content=body).status_code == 400
    assert client.post("/v1/colorize", content=photo[0]).status_code == 200


# ---- micro-batching --------------------------------------------------------------------------------------------
class Blocking:
    """A stand-in model: records each batch; the first call waits until released."""

    def __init__(self):
        self.batches, self.release, self.started = [], threading.Event(), threading.Event()

    def run(self, items):
        self.started.set()
        self.release.wait(10)
        self.batches.append(list(items))
        return [x * 10 for x in items]


def test_batcher_groups_waiting_items_by_key():
    model = Blocking()
    batcher = MicroBatcher(model.run, max_batch=3, wait_s=0.0, queue_size=10)
    first = batcher.submit("a", 0)
    assert model.started.wait(5)  # the worker is busy with item 0: the rest queue up
    futures = [batcher.submit(k, i) for i, k in enumerate("abaab", start=1)]
    model.release.set()
    assert [f.result(5) for f in [first] + futures] == [0, 10, 20, 30, 40, 50]
    batcher.stop()
    assert model.batches == [[0], [1, 3, 4], [2, 5]]  # oldest first; same key together, at most max_batch


def test_batcher_refuses_when_full_and_skips_cancelled():
    model = Blocking()
    batcher = MicroBatcher(model.run, max_batch=4, wait_s=0.0, queue_size=2)
    batcher.submit("a", 0)
    assert model.started.wait(5)
    kept, dropped = batcher.submit("a", 1), batcher.submit("a", 2)
    with pytest.raises(QueueFull):
        batcher.submit("a", 3)
    dropped.cancel()
    model.release.set()
    assert kept.result(5) == 10
    batcher.stop()
    assert model.batches == [[0], [1]]


def test_batcher_waits_briefly_for_a_fuller_batch():
    model = Blocking()
    model.release.set()
    batcher = MicroBatcher(model.run, max_batch=4, wait_s=0.5, queue_size=10)
    futures = [batcher.submit("a", 1)]
    time.sleep(0.05)
    futures.append(batcher.submit("a", 2))
    assert [f.result(5) for f in futures] == [10, 20]
    batcher.stop()
    assert model.batches == [[1, 2]]


class SlowBackend:
    """Stand-in for a model: every photo becomes its own inverse after `delay` seconds per batch."""
    name, vividness, cast_correction, auto_levels, hints = "slow", 1.0, 0.0, False, False

    def __init__(self, delay):
        self.delay, self.batch_sizes = delay, []

    def prepare(self, image, vividness, auto_levels=False, hints=(), cast_correction=None):
        return image.shape, image

    def run(self, jobs):
        self.batch_sizes.append(len(jobs))
        time.sleep(self.delay)
        return [255 - j[..., :3] if j.ndim == 3 else 255 - np.repeat(j[..., None], 3, -1) for j in jobs]

    def finish(self, job, result):
        return result


def test_server_batches_waiting_requests_and_503s_when_full():
    backend = SlowBackend(0.0)
    backend.release, backend.started = threading.Event(), threading.Event()
    plain_run = backend.run

    def run(jobs):  # the first batch holds the model until released, so the next requests queue up
        backend.started.set()
        backend.release.wait(10)
        return plain_run(jobs)
    backend.run = run
    app = create_app(backend, Limits(max_batch=8, batch_wait_ms=0, queue_size=4))
    body = encode(np.full((4, 4, 3), 10, np.uint8))
    with fastapi_testclient.TestClient(app) as c:
        results = {}

        def send(i):
            results[i] = c.post("/v1/colorize", content=body)
        threads = [threading.Thread(target=send, args=(0,))]
        threads[0].start()
        assert backend.started.wait(10)
        threads += [threading.Thread(target=send, args=(i,)) for i in range(1, 9)]
        for t in threads[1:]:
            t.start()
        deadline = time.monotonic() + 10
        while (len(app.state.service.batcher) < 4 or len(results) < 4) and time.monotonic() < deadline:
            time.sleep(0.01)  # 4 wait in the queue, 4 are refused at once
        backend.release.set()
        for t in threads:
            t.join(10)
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200] * 5 + [503] * 4
        busy = [r for r in results.values() if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" and "busy" in r.json()["error"] for r in busy)
        assert backend.batch_sizes == [1, 4]  # the requests that waited together ran as one batch
        assert np.all(decode(results[0].content) == 245)
        metrics = c.get("/metrics").text
        assert 'route="/v1/colorize",status="503"} 4.0' in metrics
        assert "colorgan_batch_size_sum 5.0" in metrics


def test_request_timeout_is_503():
    app = create_app(SlowBackend(1.5), Limits(timeout_s=0.2))
    with fastapi_testclient.TestClient(app) as c:
        assert_error(c.post("/v1/colorize", content=encode(np.zeros((4, 4), np.uint8))), 503, "no answer within")


# ---- hostile clients: each gets its one-line 4xx, nothing is logged as an error, and the server goes on ------
def _asgi_post(app, path, chunks, stall=False):
    """POST through the ASGI interface with the body in `chunks`, then (stall) nothing more, or (not stall)
    the client disconnecting; returns the status sent, or None where nothing was sent."""
    import asyncio
    sent = []

    async def run():
        messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]

        async def receive():
            if messages:
                return messages.pop(0)
            if stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"content-length", b"100000"), (b"content-type", b"image/png")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        await asyncio.wait_for(app(scope, receive, send), 10)
    asyncio.run(run())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    return starts[0]["status"] if starts else None


def test_hostile_requests_get_4xx_and_nothing_is_logged_as_an_error(colorizer, photo, caplog, recwarn):
    import logging
    app = create_app(ColorizerBackend(colorizer, "shipped weights"),
                     Limits(max_upload_mb=2, max_pixels=4_000_000, body_stall_s=0.3))
    caplog.set_level(logging.INFO, logger="colorgan")
    with fastapi_testclient.TestClient(app) as c:
        nested = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert_error(c.post("/v1/models/colorgan:predict", content=nested), 400, "nested deeper")
        assert_error(c.post("/v1/colorize?vividness=1e39", content=photo[0]), 400, "vividness", "(0, 4]")
        vivid = {"signature_name": "colorize", "inputs": {"images": [[[[1]]]], "vividness": 1e39}}
        assert_error(c.post("/v1/models/colorgan:predict", json=vivid), 400, "vividness")
        for bad in (b'{"instances": [[[[NaN]]]]}', b'{"instances": [[[[1e309]]]]}'):
            assert_error(c.post("/v1/models/colorgan:predict", content=bad), 400, "nan or infinity")
        form = {"note": (None, b"hello")}
        assert_error(c.post("/v1/colorize", files=form), 400, "no file")
        two = [("a", ("a.jpg", photo[0], "image/jpeg")), ("b", ("b.jpg", photo[0], "image/jpeg"))]
        assert_error(c.post("/v1/colorize", files=two), 400, "2 files")
        assert_error(c.post("/v1/colorize", content=b"plain text, not a photo"), 400, "not an image file")
        # a client that goes away mid-upload, and one that stalls: the first is an INFO line, the second a 408
        assert _asgi_post(app, "/v1/colorize", [b"\x89PNG\r\n"]) in (None, 499)
        assert _asgi_post(app, "/v1/colorize", [b"\x89PNG\r\n"], stall=True) == 408
        ok = c.post("/v1/colorize", content=photo[0])  # and it still serves a real photo
        assert ok.status_code == 200 and decode(ok.content).shape == photo[1].shape
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert any("disconnected before its upload ended" in r.getMessage() for r in caplog.records)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in recwarn]


def test_a_key_is_needed_everywhere_but_the_page_and_healthz(colorizer, photo):
    app = create_app(ColorizerBackend(colorizer, "shipped weights"), Limits(max_upload_mb=2),
                     api_keys=["first-key-123", "second-key-456"])
    with fastapi_testclient.TestClient(app) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        assert c.get("/static/app.js").status_code == 200
        for route in ("/v1/info", "/metrics", "/v1/models/colorgan"):
            assert_error(c.get(route), 401, "key")
            assert_error(c.get(route, headers={"Authorization": "Bearer wrong-key-000"}), 401, "key")
        assert c.get("/v1/info", headers={"Authorization": "Bearer first-key-123"}).json()["needs_key"] is True
        assert c.get("/metrics", headers={"X-API-Key": "second-key-456"}).status_code == 200
        assert_error(c.post("/v1/colorize", content=photo[0]), 401, "key")
        ok = c.post("/v1/colorize", content=photo[0], headers={"Authorization": "bearer second-key-456"})
        assert ok.status_code == 200
        assert c.get("/", headers={"Origin": "https://elsewhere.example"}).headers.get(
            "access-control-allow-origin") is None  # CORS off by default


def test_cors_lets_only_the_named_site_call_the_api(colorizer):
    app = create_app(ColorizerBackend(colorizer, "shipped weights"), cors_origins=["https://photos.example"])
    with fastapi_testclient.TestClient(app) as c:
        preflight = {"Origin": "https://photos.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization"}
        allowed = c.options("/v1/colorize", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://photos.example"
        other = c.get("/v1/info", headers={"Origin": "https://other.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


def test_the_pixel_budget_makes_large_photos_wait_their_turn_and_never_overspends():
    import asyncio
    from colorgan.serving.budget import BudgetTimeout, PixelBudget
    budget, order = PixelBudget(100), []

    async def job(name, pixels, hold_s, timeout=5.0):
        async with budget.hold(pixels, timeout):
            order.append((name, budget.used))
            await asyncio.sleep(hold_s)

    async def run():
        first = asyncio.create_task(job("a", 60, 0.2))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(job("b", 50, 0.0))  # 60 + 50 > 100: waits for a
        small = asyncio.create_task(job("c", 30, 0.0))  # 60 + 30 fits: goes at once
        with pytest.raises(BudgetTimeout):
            await job("d", 90, 0.0, timeout=0.05)  # never room within its timeout
        await asyncio.gather(first, second, small)
    asyncio.run(run())
    assert [name for name, _ in order] == ["a", "c", "b"] and budget.used == 0 and budget.peak <= 100
    with pytest.raises(ValueError):
        asyncio.run(job("huge", 101, 0.0))


def test_a_request_over_the_budget_is_413_and_a_busy_budget_is_503(colorizer):
    limits = Limits(max_pixels=200_000, max_pixels_in_flight=300_000, timeout_s=0.3)
    app = create_app(ColorizerBackend(colorizer, "shipped weights"), limits)
    batch = {"instances": np.zeros((4, 300, 300, 1), np.uint8).tolist()}  # 360,000 pixels in one request
    small = encode(np.full((200, 200), 90, np.uint8))
    with fastapi_testclient.TestClient(app) as c:
        assert_error(c.post("/v1/models/colorgan:predict", json=batch), 413, "in work at once")
        budget = app.state.service.budget
        budget.used = 280_000  # as if other photos were being worked on: 40,000 more do not fit
        assert_error(c.post("/v1/colorize", content=small), 503, "busy")
        budget.used = 0
        assert c.post("/v1/colorize", content=small).status_code == 200
        assert budget.used == 0 and budget.peak == 40_000  # held while working, given back after
    with pytest.raises(ValueError, match="max_pixels_in_flight"):
        create_app(ColorizerBackend(colorizer, "x"), Limits(max_pixels=10, max_pixels_in_flight=5))
