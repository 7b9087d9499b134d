"""The models a server runs: a Colorizer (shipped weights or a run) and an exported SavedModel, behind one
interface: prepare(image, ...) -> (batch key, job), run(jobs) -> results, finish(job, result) -> the photo."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from colorgan.config import check_vividness
from colorgan.errors import ColorganError


# ---- models -----------------------------------------------------------------------------------------------
class ColorizerBackend:
    """A generator (shipped weights, a run): photos of any size batched by the working size the network sees."""
    auto_levels = True  # the network's input is made here, so a faded photo's levels can be stretched for it
    cast_per_photo = True  # the cast correction is an argument of each call (Colorizer.predict_ab)

    def __init__(self, colorizer, name: str):
        self.colorizer, self.name = colorizer, name
        self.vividness = float(colorizer.vividness)
        self.cast_correction = float(colorizer.cast_correction)

    @property
    def hints(self) -> bool:
        return self.colorizer.takes_hints

    def prepare(self, image: np.ndarray, vividness: float | None, auto_levels: bool = False, hints=(),
                cast_correction: float | None = None):
        v, c = self.colorizer.check_vividness(vividness), self.colorizer.check_cast_correction(cast_correction)
        prepared = self.colorizer.prepare(image, auto_levels)
        return prepared.model_in.shape[1:3], (prepared, v, self.colorizer.hint_map(prepared, hints), c)

    def run(self, jobs: list) -> list:
        model_in = np.concatenate([p.model_in for p, _, _, _ in jobs])  # [N, h, w, 1]
        hints = None
        if self.hints:  # a hint model: each photo's hint channels, zeros for a photo without hints
            hints = np.concatenate([h if h is not None else self.colorizer.no_hints(p.model_in)
                                    for p, _, h, _ in jobs])
        return list(self.colorizer.predict_ab(model_in, np.array([job[1] for job in jobs], np.float32), hints,
                                              np.array([job[3] for job in jobs], np.float32)))

    def finish(self, job, result) -> np.ndarray:
        return self.colorizer.finish(job[0], result)


class SavedModelBackend:
    """An exported SavedModel (what TF Serving would load), called through its signatures: photos batched
    when they share size and vividness (and whether they have hints)."""
    auto_levels = False  # the signatures take the photo as it is
    cast_per_photo = False  # the cast correction is built into the signatures

    def __init__(self, version_dir: str | Path):
        import tensorflow as tf

        from colorgan.inference.export import saved_model_info
        version_dir = Path(version_dir)
        if not (version_dir / "saved_model.pb").exists():
            versions = sorted((p for p in version_dir.glob("*") if (p / "saved_model.pb").exists()),
                              key=lambda p: int(p.name) if p.name.isdigit() else -1)
            if not versions:
                raise ColorganError(f"{version_dir}: no SavedModel here (export one with export.py)")
            version_dir = versions[-1]  # TF Serving's layout: the newest numbered version
        loaded = tf.saved_model.load(str(version_dir))
        self._keep = loaded
        self.default_fn, self.vivid_fn = loaded.signatures["serving_default"], loaded.signatures["colorize"]
        self.hint_fn = loaded.signatures.get("colorize_hints")  # exported from a --hints model
        self.hints = self.hint_fn is not None
        self.name = str(version_dir)
        info = saved_model_info(version_dir)
        self.vividness = float(info.get("vividness", 1.0))
        self.cast_correction = float(info.get("cast_correction", 0.0))  # built into the signatures

    def prepare(self, image: np.ndarray, vividness: float | None, auto_levels: bool = False, hints=(),
                cast_correction: float | None = None):
        from colorgan.inference.colorizer import to_float_image
        if auto_levels:  # the exported signatures take the photo as it is
            raise ColorganError("auto_levels needs the model itself (serve.py --run or the shipped weights), "
                                "not an exported SavedModel")
        if cast_correction is not None and cast_correction != self.cast_correction:
            raise ColorganError(f"this SavedModel has its cast correction ({self.cast_correction:g}) built in: "
                                "another needs the model itself (serve.py --run or the shipped weights)")
        if hints and not self.hints:
            raise ColorganError("colour hints need a model trained with --hints; this SavedModel was exported "
                                "from one without")
        if vividness is not None:
            vividness = check_vividness(vividness)
        image, alpha = np.asarray(image), None
        if image.ndim == 2:
            image = image[..., None]
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
            gray, alpha = to_float_image(image)  # 16-bit, alpha: the signature takes uint8 gray or RGB
            image = np.round(gray * 255.0).astype(np.uint8)
        rows = None
        if hints:  # the signature's rows: x, y in pixels from the top-left (Hint.pixel gives pixel centres)
            from colorgan.inference.hints import parse_hints
            height, width = image.shape[:2]
            rows = np.array([(x - 0.5, y - 0.5, *hint.rgb) for hint in parse_hints(list(hints))
                             for y, x in [hint.pixel(height, width)]], np.float32)
        return (image.shape, vividness, rows is not None), (image, alpha, vividness, rows)

    def run(self, jobs: list) -> list:
        import tensorflow as tf
        images = tf.constant(np.stack([job[0] for job in jobs]))
        vividness = jobs[0][2]  # the key: one vividness per batch, and hints for all or none
        if jobs[0][3] is not None:
            most = max(len(job[3]) for job in jobs)
            rows = np.full((len(jobs), most, 5), -1.0, np.float32)  # padding rows lie outside every photo
            for n, job in enumerate(jobs):
                rows[n, :len(job[3])] = job[3]
            out = self.hint_fn(images=images, hints=tf.constant(rows),
                               vividness=tf.constant(self.vividness if vividness is None else vividness, tf.float32))
        elif vividness is None:
            out = self.default_fn(images=images)
        else:
            out = self.vivid_fn(images=images, vividness=tf.constant(vividness, tf.float32))
        return list(out["colorized"].numpy())

    def finish(self, job, result) -> np.ndarray:
        from colorgan.inference.colorizer import with_alpha
        return with_alpha(result, job[1])
