"""One typed training config: its fields with their choices and ranges, validation, and config.json.

Every field is a flag (`image_size` -> `--image-size`, built in cli.py from the annotations); `--help`
lists them with their defaults. A field that may be worked out from the data or the machine has the
value "auto" (written the same way in Python, on the command line and in config.json). `resolved()`
fills in what can be known before training, and config.json records the resolved config, so evaluation
and `--resume` rebuild the run with no flags.

config.json carries a schema version; files written by earlier versions are migrated when loaded
(config_schema.migrate), so old runs still resume, evaluate and colorize.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from colorgan.config_schema import AUTO, SCHEMA_VERSION, migrate
from colorgan.errors import ColorganError

Auto = Literal["auto"]
DEFAULT_DATA = "data/cifar10-mini"

# Each list of choices, defined once; the modules implementing them import them from here.
COLOR_SPACES = ("lab", "rgb")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODELS = ("pix2pix", "unet-l1", "autoencoder")
GENERATORS = ("unet", "effnet-lite0")
AB_LOSSES = ("l1", "classification")
LOSSES = ("l1", "mse")
NORMS = ("batch", "instance", "group", "none")
GAN_LOSSES = ("vanilla", "lsgan", "hinge", "wgan-gp")
SCHEDULES = ("constant", "linear", "cosine")
SWITCHES = ("auto", "on", "off")
EXPORT_FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZE = ("none", "float16", "dynamic")  # tflite: float32, float16 or int8 (dynamic range) weights
STRATEGIES = ("none", "mirrored", "multiworker")


def unet_depth(image_size: int) -> int:
    """Stride-2 levels of the U-Net: down to 1x1 at 256 px and below, 8 levels above."""
    return max(1, min(8, int(math.log2(max(image_size, 1)))))


# ---- per-field checks (beyond choices and ranges) --------------------------------------------------
def _unet_size(value: int) -> str | None:
    # The U-Net halves the image down to 1x1 (8 levels above 256 px): sides must divide evenly.
    if value < 16 or value % (2 ** unet_depth(value)):
        return f"{value} is not a power of two from 16 (or a multiple of 256 above)"
    return None


def _effnet_size(value: int) -> str | None:
    # The EfficientNet encoder stops at stride 32, so any multiple of 32 divides evenly down and back up.
    if value < 32 or value % 32:
        return f"{value}: the effnet-lite0 encoder downsamples 32 times; use a multiple of 32"
    return None


def _image_size_problem(value: int) -> str | None:
    """The smallest check that holds for every generator; the generator's own rule is checked with it."""
    return None if value >= 16 else f"{value} is less than 16"


def _plain_name(value: str) -> str | None:
    if os.sep in value or value in (".", ".."):
        return f"{value!r} must be a plain name, not a path"
    return None


def _not_blank(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def split_weight(entry: str) -> tuple[str, float | None]:
    """A --more-data entry "DIR" or "DIR:W" -> (DIR, W or None). The weight is what follows the last colon when
    that is a number, so a path with colons in it is still a path."""
    path, colon, weight = entry.rpartition(":")
    if colon and path:
        try:
            return path, float(weight)
        except ValueError:
            pass
    return entry, None


def _mix_problem(entries: list[str]) -> str | None:
    weights = [w for _, w in map(split_weight, entries) if w is not None]
    bad = [w for w in weights if not (0.0 < w < 1.0)]
    if bad:
        return f"weight {bad[0]} is not in (0, 1): a weight is a share of the training draws"
    if sum(weights) >= 1.0:
        return f"the weights add up to {sum(weights):g}, leaving nothing for --data (they must add up to less than 1)"
    return None


def _opt(default, help: str, choices: tuple | None = None, interval: str | None = None, check=None,
         used_by: tuple | None = None, **kwargs):
    """A config field. interval: a range such as "[0, 1)" or "(0, inf)"; check(value) -> error or None;
    used_by: the --model values the field applies to (set away from its default with another model, it is
    an error rather than silently ignored)."""
    metadata = {"help": help, "choices": choices, "interval": interval, "check": check, "used_by": used_by}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class Config:
    # data
    data: str = _opt(DEFAULT_DATA, "a paired folder (color/ + gray/), a folder of colour images (flat or class "
                                   "subfolders), a folder with train/ and test/ class subfolders, or 'cifar10'",
                     check=_not_blank)
    more_data: list[str] = _opt([], "comma list of more data to train on together with --data, each DIR or DIR:W "
                                    "(each split as it would be alone). W is the share of training draws taken from "
                                    "it, e.g. faces:0.2; the sources without a weight (--data among them) share what "
                                    "is left in proportion to their sizes. Without weights: in proportion to the sizes "
                                    "(list one twice to draw from it twice as often)",
                                check=_mix_problem)
    classes: list[str] = _opt([], "comma list of class subfolders to keep, e.g. horse or horse,deer; empty: all")
    image_size: int | Auto = _opt(AUTO, "training size in pixels: a power of two for the U-Net, a multiple of 32 "
                                        "for effnet-lite0 (auto: 32 for CIFAR-10-sized data, 256 otherwise)",
                                  check=_image_size_problem)
    color_space: str = _opt("lab", "lab: predict ab from L; rgb: predict RGB from gray", COLOR_SPACES)
    val_split: float = _opt(0.1, "validation fraction for data without its own test split", interval="[0, 1)")
    jitter: bool = _opt(True, "pix2pix jitter: resize up ~12%, random crop back, random mirror")
    degrade: float = _opt(0.0, "old-photo damage: this share of the gray inputs get a random mix of grain, noise, "
                               "JPEG, blur, fading, uneven exposure, dust, scratches and halftone (colorgan.data.degrade); "
                               "the colour target untouched", interval="[0, 1]")
    # model
    model: str = _opt("pix2pix", "pix2pix: U-Net + PatchGAN (BCE + lambda L1); unet-l1: the same U-Net trained with "
                                 "--loss alone; autoencoder: a 4-level conv encoder-decoder trained with --loss", MODELS)
    skip_connections: bool = _opt(False, "U-Net-style skip connections in the autoencoder (the U-Net always has "
                                         "them)", used_by=("autoencoder",))
    loss: str = _opt("l1", "reconstruction loss of the non-adversarial models (pix2pix trains with --gan-loss + "
                           "lambda * L1)", LOSSES, used_by=("unet-l1", "autoencoder"))
    generator: str = _opt("unet", "the generator of pix2pix and unet-l1: unet (the pix2pix U-Net) or effnet-lite0 (a U-Net "
                                  "decoder on an EfficientNet-Lite0 encoder pretrained on ImageNet)", GENERATORS,
                          used_by=("pix2pix", "unet-l1"))
    freeze_encoder_epochs: int = _opt(0, "effnet-lite0: train the decoder alone for this many epochs, the pretrained "
                                         "encoder frozen", interval="[0, inf)")
    ab_loss: str = _opt("l1", "how ab is learnt (lab only): l1 (regression, weighted by --lambda-l1) or classification "
                              "(cross-entropy over the in-gamut ab bins with class rebalancing, Zhang et al. 2016)",
                        AB_LOSSES)
    rebalance_mix: float = _opt(0.5, "--ab-loss classification: lambda of the class rebalancing, the uniform "
                                     "distribution's share in the mix (0.5: Zhang et al.; 1: no rebalancing, every "
                                     "colour weighs the same and the predicted distribution stays calibrated, but "
                                     "a lower temperature then picks neutral bins, so --vividness above 1 adds no "
                                     "colour: docs/colour_quality.md)",
                                interval="(0, 1]")
    perceptual_weight: float = _opt(0.0, "weight of a perceptual term: the mean distance between the frozen, "
                                         "ImageNet-pretrained EfficientNet-Lite0's features (strides 2-16) of the "
                                         "colorized and the true RGB image (losses.perceptual_loss)",
                                    interval="[0, inf)")
    colourfulness_weight: float = _opt(0.0, "weight of a colourfulness term on the generated colours: "
                                            "1 - colourfulness / 100", interval="[0, inf)")
    chroma_weight: float = _opt(0.0, "weight of a chroma-deficit term: per pixel, how much less saturated the "
                                     "colorized ab is than the true ab (never how much more; losses.chroma_deficit_loss): "
                                     "counters L1's pale average where the model is sure of a colour's strength",
                                interval="[0, inf)")
    vividness: float = _opt(1.0, "saturation at inference (1: as trained; more: more saturated): a chroma gain, or "
                                 "the classification's decoding temperature divided by it; at most 4 (beyond it colours "
                                 "clip at the edge of sRGB)", interval="(0, 4]")
    cast_correction: float = _opt(0.0, "at inference, take away this share of a yellow-olive tint laid over a whole "
                                       "frame (colorgan.color.chroma.without_cast; 0: none, 1: all of it): the "
                                       "average colour a model gives what it cannot read, e.g. old photos",
                                  interval="[0, 1]")
    hints: bool = _opt(False, "train a generator that also takes user colour hints (points of known colour), "
                              "simulated from the true photo during training (colorgan.color.hints); with no "
                              "hints it colorizes alone")
    init_from: str = _opt("none", "fine-tuning: start the generator from a run directory, a weights folder, a .keras "
                                  "file or 'shipped' (the shipped model); none: from scratch (effnet-lite0: from "
                                  "ImageNet)", check=_not_blank)
    base_filters: int = _opt(64, "channels of the first U-Net and PatchGAN level (64 is the pix2pix network)",
                             interval="[1, inf)")
    norm: str = _opt("batch", "normalisation in the generator (and autoencoder)", NORMS)
    g_dropout: float = _opt(0.5, "dropout rate in the first three U-Net decoder blocks", interval="[0, 1)")
    # discriminator and adversarial loss (pix2pix only)
    d_norm: str = _opt("batch", "normalisation in the discriminator (wgan-gp needs instance, group or none)", NORMS)
    spectral_norm: bool = _opt(False, "spectral normalisation of every discriminator convolution")
    d_dropout: float = _opt(0.0, "dropout rate after each hidden discriminator layer", interval="[0, 1)")
    gan_loss: str = _opt("vanilla", "adversarial loss: vanilla (BCE), lsgan (least squares), hinge, or wgan-gp "
                                    "(Wasserstein critic with gradient penalty)", GAN_LOSSES)
    gp_weight: float = _opt(10.0, "wgan-gp: weight of the gradient penalty", interval="[0, inf)")
    critic_steps: int = _opt(1, "discriminator updates per generator update (wgan-gp commonly uses 5)",
                             interval="[1, inf)")
    label_smoothing: float = _opt(0.0, "one-sided label smoothing: real target 1 - this (vanilla and lsgan)",
                                  interval="[0, 0.5)")
    critic_warmup_epochs: int = _opt(0, "train the discriminator alone on the generator's outputs for this many "
                                        "epochs first, the generator held as it is (the critic pre-training of "
                                        "DeOldify's NoGAN: with --init-from a trained generator, the adversary "
                                        "starts against a critic that already knows its colours)",
                                     interval="[0, inf)", used_by=("pix2pix",))
    l1_warmup_epochs: int = _opt(0, "train the generator on L1 alone for this many epochs before the adversary "
                                    "starts", interval="[0, inf)")
    # optimisation
    batch_size: int | Auto = _opt(AUTO, "images per step (auto: 64 up to 64 px, 16 at 128 px, 4 above)",
                                  interval="[1, inf)")
    epochs: int = _opt(20, "epochs to train in total", interval="[1, inf)")
    steps_per_epoch: int | Auto = _opt(AUTO, "train steps per epoch (auto: one pass over the training data)",
                                       interval="[1, inf)")
    val_steps: int | Auto = _opt(AUTO, "validation batches per epoch (auto: the whole validation split)",
                                 interval="[1, inf)")
    lr: float = _opt(2e-4, "Adam learning rate of the generator (and of the discriminator unless --d-lr)",
                     interval="(0, inf)")
    d_lr: float | Auto = _opt(AUTO, "Adam learning rate of the discriminator (auto: the same as --lr)",
                              interval="(0, inf)")
    beta1: float = _opt(0.5, "Adam beta_1", interval="[0, 1)")
    lr_schedule: str = _opt("constant", "constant; linear: constant, then linear decay to 0 over the last "
                                        "--decay-epochs (pix2pix); cosine: cosine decay to 0 over all epochs", SCHEDULES)
    decay_epochs: int | Auto = _opt(AUTO, "linear schedule: epochs of decay at the end (auto: half of --epochs)",
                                    interval="[1, inf)")
    clip_norm: float = _opt(0.0, "clip each network's gradient to this global norm (0: no clipping)",
                            interval="[0, inf)")
    lambda_l1: float = _opt(100.0, "weight of the L1 term in the generator loss", interval="[0, inf)")
    precision: str = _opt(AUTO, "fp32; bf16: mixed bfloat16, float32 weights (faster on CPUs with AMX/AVX-512 "
                                "BF16, for the U-Net); fp16: mixed float16 with loss scaling (GPUs). auto: bf16 "
                                "where it is faster (the U-Net on such CPUs), fp32 elsewhere", PRECISIONS)
    xla: str = _opt(AUTO, "XLA-compile the train step (jit_compile); auto: on with a GPU, off on CPUs, where it "
                          "made this model slower", SWITCHES)
    strategy: str = _opt("none", "tf.distribute: none (one device), mirrored (all local GPUs, or logical CPUs), "
                                 "multiworker (several machines, configured by TF_CONFIG)", STRATEGIES)
    seed: int = _opt(42, "seed for the data split, data order and initialisation")
    split_seed: int | Auto = _opt(AUTO, "seed of the train/validation split alone (auto: --seed); keep it while "
                                        "changing --seed to repeat a run on the same validation photos")
    # outputs
    run_name: str = _opt(AUTO, "run directory name under --checkpoint-dir (auto: <data>-<date>-<time>)",
                         check=_plain_name)
    checkpoint_dir: str = _opt("checkpoints", "where run directories are written", check=_not_blank)
    num_samples: int = _opt(8, "validation images in each epoch's sample grid", interval="[0, inf)")
    tensorboard: bool = _opt(True, "write TensorBoard logs to the run's logs/ folder: losses, learning rates, the "
                                   "sample grid and the config, per epoch")

    # ---- derived values -------------------------------------------------------------------------
    @property
    def unet_depth(self) -> int:
        return unet_depth(self.image_size)

    @property
    def data_split_seed(self) -> int:
        return self.seed if self.split_seed == AUTO else self.split_seed

    @property
    def discriminator_lr(self) -> float:
        return self.lr if self.d_lr == AUTO else self.d_lr

    def resolved(self, default_image_size: int) -> "Config":
        """The config with what can be known before training filled in (size, batch, precision, XLA), validated.

        steps_per_epoch, val_steps, d_lr and decay_epochs stay "auto": they follow the data and --epochs,
        which a resumed run may change.
        """
        from colorgan.runtime import default_precision, default_xla

        size = default_image_size if self.image_size == AUTO else self.image_size
        batch = self.batch_size if self.batch_size != AUTO else (64 if size <= 64 else 16 if size <= 128 else 4)
        precision = default_precision(self.generator) if self.precision == AUTO else self.precision
        xla = default_xla() if self.xla == AUTO else self.xla
        cfg = dataclasses.replace(self, image_size=size, batch_size=batch, precision=precision, xla=xla)
        cfg.validate()
        return cfg

    # ---- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ColorganError naming the flag of the first bad value: choices, ranges and checks declared
        with each field, the models a field applies to, then the rules that tie fields together."""
        defaults = Config()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = field_problem(f, value)
            used_by = f.metadata.get("used_by")
            if problem is None and used_by and self.model not in used_by and value != getattr(defaults, f.name):
                problem = f"applies to --model {' or '.join(used_by)}, not {self.model}"
            if problem:
                raise ColorganError(f"{flag_name(f.name)}: {problem}")
        for name, problem in self._combination_problems():
            raise ColorganError(f"{flag_name(name)}: {problem}")

    def _combination_problems(self):
        if self.label_smoothing and self.gan_loss not in ("vanilla", "lsgan"):
            yield "label_smoothing", f"applies to the vanilla and lsgan losses, not {self.gan_loss}"
        if self.gan_loss == "wgan-gp" and self.d_norm == "batch":
            yield "d_norm", ("batch normalisation mixes the images of a batch, which breaks wgan-gp's per-image "
                             "gradient penalty; use --d-norm instance, group or none")
        if self.freeze_encoder_epochs and self.generator != "effnet-lite0":
            yield "freeze_encoder_epochs", f"applies to --generator effnet-lite0 (a pretrained encoder), not {self.generator}"
        if self.image_size != AUTO:
            problem = (_effnet_size if self.generator == "effnet-lite0" else _unet_size)(self.image_size)
            if problem:
                yield "image_size", problem
        if self.ab_loss == "classification" and self.color_space != "lab":
            yield "ab_loss", "classification predicts ab bins: it needs --color-space lab"
        if self.chroma_weight and self.color_space != "lab":
            yield "chroma_weight", "the chroma of predicted ab: it needs --color-space lab"
        if self.ab_loss == "classification" and self.loss != "l1":
            yield "loss", "--ab-loss classification trains on its cross-entropy instead of a pixel loss"
        if self.rebalance_mix != 0.5 and self.ab_loss != "classification":
            yield "rebalance_mix", "applies to --ab-loss classification (the weights of its cross-entropy)"
        if self.decay_epochs != AUTO and self.decay_epochs > self.epochs:
            yield "decay_epochs", f"{self.decay_epochs} is more than --epochs {self.epochs}"

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        from colorgan import __version__, cpu_kernels
        return {"schema": SCHEMA_VERSION, "colorgan_version": __version__, "cpu_kernels": cpu_kernels.choice(),
                **dataclasses.asdict(self)}

    def save(self, path: str | os.PathLike) -> None:
        from colorgan.atomic import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        values = migrate(values)
        for record in ("colorgan_version", "cpu_kernels"):  # who wrote the file, on which kernels: records, not fields
            values.pop(record, None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ColorganError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Config":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ColorganError(f"{path}: no such file") from None
        except (OSError, ValueError) as e:
            raise ColorganError(f"{path}: not a readable config ({e})") from None
        if not isinstance(values, dict):
            raise ColorganError(f"{path}: not a config (expected a JSON object)")
        try:
            return cls.from_dict(values)
        except ColorganError as e:
            raise ColorganError(f"{path}: {e}") from None


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_types() -> dict[str, object]:
    """Each field's annotation as a type (the module uses postponed annotations, so f.type is a string)."""
    return typing.get_type_hints(Config)


def allows_auto(annotation) -> bool:
    return Auto in typing.get_args(annotation)


def base_type(annotation):
    """int for `int | Auto`, list for `list[str]`, else the annotation itself."""
    args = [a for a in typing.get_args(annotation) if a is not Auto]
    if typing.get_origin(annotation) is list:
        return list
    return args[0] if args and typing.get_origin(annotation) is not Literal else annotation


def _in_interval(value: float, interval: str) -> bool:
    low, high = (float(x) for x in interval[1:-1].split(","))
    above = value > low if interval[0] == "(" else value >= low
    below = value < high if interval[-1] == ")" else value <= high
    return above and below


def _outside(value, interval: str) -> str:
    low, high = (x.strip() for x in interval[1:-1].split(","))
    if high == "inf" and interval[0] == "(":
        return f"{value} is not a positive number" if low == "0" else f"{value} is not more than {low}"
    if high == "inf":
        return f"{value} is less than {low}"
    return f"{value} is not in {interval}"


def field_problem(f: dataclasses.Field, value) -> str | None:
    """What is wrong with `value` for field f (its type, choices, range, own check), or None."""
    if value == AUTO and allows_auto(field_types()[f.name]):
        return None
    kind = base_type(field_types()[f.name])
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok_type = isinstance(value, kind) and not (kind is int and isinstance(value, bool)) and \
        not (kind is list and not all(isinstance(item, str) for item in value))
    if not ok_type:
        what = {int: "a whole number", float: "a number", list: "a list of names"}.get(kind, "a " + kind.__name__)
        return f"{value!r} is not {what}" + \
               (" or 'auto'" if allows_auto(field_types()[f.name]) else "")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        return f"{value!r} is not one of {', '.join(choices)}"
    if kind in (int, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    interval = f.metadata.get("interval")
    if interval and not _in_interval(value, interval):
        return _outside(value, interval)
    check = f.metadata.get("check")
    return check(value) if check else None



def check_vividness(value) -> float:
    """A vividness given at inference (a flag, a query, a JSON number) as a float, by Config.vividness' own rule;
    a ColorganError saying what is wrong otherwise. Every entry point checks it here."""
    return check_inference_number("vividness", value)


def check_inference_number(name: str, value) -> float:
    """A number given at inference for Config field `name` (vividness, cast_correction) as a float, by the
    field's own rule; a ColorganError saying what is wrong otherwise."""
    label = name.replace("_", " ")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ColorganError(f"{label} {value!r} is not a number") from None
    problem = field_problem(next(f for f in dataclasses.fields(Config) if f.name == name), value)
    if problem:
        raise ColorganError(f"{label} {problem}")
    return float(value)


def config_from_overrides(overrides: dict, base: Config | None = None) -> Config:
    cfg = dataclasses.replace(base or Config(), **overrides)
    cfg.validate()
    return cfg
