"""One typed training config, its command line, and its JSON form saved beside each run.

Every field is a flag (`image_size` -> `--image-size`); `--help` lists them with their defaults.
Fields whose default is "auto" (0 or "") are resolved once the data is known, and the resolved
config is what `config.json` records, so evaluation and `--resume` rebuild the run with no flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ColorganError

DEFAULT_DATA = "data/cifar10-mini"
COLOR_SPACES = ("lab", "rgb")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODELS = ("pix2pix", "unet-l1", "autoencoder")
LOSSES = ("l1", "mse")
NORMS = ("batch", "instance", "group", "none")
GAN_LOSSES = ("vanilla", "lsgan", "hinge", "wgan-gp")
SCHEDULES = ("constant", "linear", "cosine")
SWITCHES = ("auto", "on", "off")
STRATEGIES = ("none", "mirrored", "multiworker")


def _opt(default, help, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Config:
    # data
    data: str = _opt(DEFAULT_DATA, "a paired folder (color/ + gray/), a folder of colour images (flat or class "
                                   "subfolders), a folder with train/ and test/ class subfolders, or 'cifar10'")
    classes: list[str] = field(default_factory=list, metadata={
        "help": "comma list of class subfolders to keep, e.g. horse or horse,deer (default: all)"})
    image_size: int = _opt(0, "training size in pixels, a power of two (0: 32 for CIFAR-10-sized data, 256 otherwise)")
    color_space: str = _opt("lab", "lab: predict ab from L; rgb: predict RGB from gray", COLOR_SPACES)
    val_split: float = _opt(0.1, "validation fraction for data without its own test split")
    jitter: bool = _opt(True, "pix2pix jitter: resize up ~12%, random crop back, random mirror")
    # model
    model: str = _opt("pix2pix", "pix2pix: U-Net + PatchGAN (BCE + lambda L1); unet-l1: the same U-Net trained with "
                                 "--loss alone; autoencoder: a 4-level conv encoder-decoder trained with --loss", MODELS)
    skip_connections: bool = _opt(False, "autoencoder only: U-Net-style skip connections")
    loss: str = _opt("l1", "reconstruction loss of the non-adversarial models (unet-l1, autoencoder)", LOSSES)
    base_filters: int = _opt(64, "channels of the first U-Net and PatchGAN level (64 is the pix2pix network)")
    norm: str = _opt("batch", "normalisation in the generator (and autoencoder)", NORMS)
    g_dropout: float = _opt(0.5, "dropout rate in the first three U-Net decoder blocks")
    # discriminator and adversarial loss (pix2pix only)
    d_norm: str = _opt("batch", "normalisation in the discriminator (wgan-gp needs instance, group or none)", NORMS)
    spectral_norm: bool = _opt(False, "spectral normalisation of every discriminator convolution")
    d_dropout: float = _opt(0.0, "dropout rate after each hidden discriminator layer")
    gan_loss: str = _opt("vanilla", "adversarial loss: vanilla (BCE), lsgan (least squares), hinge, or wgan-gp "
                                    "(Wasserstein critic with gradient penalty)", GAN_LOSSES)
    gp_weight: float = _opt(10.0, "wgan-gp: weight of the gradient penalty")
    critic_steps: int = _opt(1, "discriminator updates per generator update (wgan-gp commonly uses 5)")
    label_smoothing: float = _opt(0.0, "one-sided label smoothing: real target 1 - this (vanilla and lsgan)")
    l1_warmup_epochs: int = _opt(0, "train the generator on L1 alone for this many epochs before the adversary starts")
    # optimisation
    batch_size: int = _opt(0, "images per step (0: 64 up to 64 px, 16 at 128 px, 4 above)")
    epochs: int = _opt(20, "epochs to train in total")
    steps_per_epoch: int = _opt(0, "train steps per epoch (0: one pass over the training data)")
    val_steps: int = _opt(0, "validation batches per epoch (0: the whole validation split)")
    lr: float = _opt(2e-4, "Adam learning rate of the generator (and of the discriminator unless --d-lr)")
    d_lr: float = _opt(0.0, "Adam learning rate of the discriminator (0: the same as --lr)")
    beta1: float = _opt(0.5, "Adam beta_1")
    lr_schedule: str = _opt("constant", "constant; linear: constant, then linear decay to 0 over the last "
                                        "--decay-epochs (pix2pix); cosine: cosine decay to 0 over all epochs", SCHEDULES)
    decay_epochs: int = _opt(0, "linear schedule: epochs of decay at the end (0: half of --epochs)")
    clip_norm: float = _opt(0.0, "clip each network's gradient to this global norm (0: no clipping)")
    lambda_l1: float = _opt(100.0, "weight of the L1 term in the generator loss")
    precision: str = _opt("auto", "fp32; bf16: mixed bfloat16, float32 weights (faster on CPUs with AMX/AVX-512 "
                                  "BF16); fp16: mixed float16 with loss scaling (GPUs). auto: bf16 on such CPUs, "
                                  "fp32 elsewhere", PRECISIONS)
    xla: str = _opt("auto", "XLA-compile the train step (jit_compile); auto: on with a GPU, off on CPUs, where it "
                            "made this model about 4x slower", SWITCHES)
    strategy: str = _opt("none", "tf.distribute: none (one device), mirrored (all local GPUs, or logical CPUs), "
                                 "multiworker (several machines, configured by TF_CONFIG)", STRATEGIES)
    seed: int = _opt(42, "seed for the data split, data order and initialisation")
    # outputs
    run_name: str = _opt("", "run directory name under --checkpoint-dir (default: <data>-<date>-<time>)")
    checkpoint_dir: str = _opt("checkpoints", "where run directories are written")
    num_samples: int = _opt(8, "validation images in each epoch's sample grid")

    # ---- derived values -------------------------------------------------------------------------
    @property
    def unet_depth(self) -> int:
        """Stride-2 levels of the U-Net: down to 1x1 at 256 px and below, 8 levels above."""
        return unet_depth(self.image_size)

    def resolved(self, default_image_size: int) -> "Config":
        """The config with its "auto" fields filled in, validated."""
        size = self.image_size or default_image_size
        batch = self.batch_size or (64 if size <= 64 else 16 if size <= 128 else 4)
        precision = self.precision if self.precision != "auto" else default_precision()
        xla = self.xla if self.xla != "auto" else ("on" if _has_gpu() else "off")
        cfg = dataclasses.replace(self, image_size=size, batch_size=batch, precision=precision, xla=xla)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def bad(flag, why):
            raise ColorganError(f"--{flag.replace('_', '-')}: {why}")

        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                bad(f.name, f"{getattr(self, f.name)!r} is not one of {', '.join(choices)}")
        if self.image_size:
            if self.image_size < 16 or self.image_size % (2 ** unet_depth(self.image_size)):
                bad("image_size", f"{self.image_size} is not a power of two from 16 (or a multiple of 256 above)")
        for name in ("batch_size",):
            if getattr(self, name) < 0:
                bad(name, "must be positive")
        for name in ("epochs", "base_filters", "critic_steps"):
            if getattr(self, name) < 1:
                bad(name, "must be at least 1")
        for name in ("steps_per_epoch", "val_steps", "num_samples", "decay_epochs", "l1_warmup_epochs"):
            if getattr(self, name) < 0:
                bad(name, "must be 0 or more")
        if not 0.0 <= self.val_split < 1.0:
            bad("val_split", f"{self.val_split} is not in [0, 1)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad("lr", f"{self.lr} is not a positive number")
        if not 0.0 <= self.beta1 < 1.0:
            bad("beta1", f"{self.beta1} is not in [0, 1)")
        if not (self.d_lr >= 0 and math.isfinite(self.d_lr)):
            bad("d_lr", f"{self.d_lr} is not a number >= 0")
        for name in ("lambda_l1", "gp_weight", "clip_norm"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                bad(name, f"{getattr(self, name)} is not a number >= 0")
        for name in ("g_dropout", "d_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, f"{getattr(self, name)} is not a rate in [0, 1)")
        if not 0.0 <= self.label_smoothing < 0.5:
            bad("label_smoothing", f"{self.label_smoothing} is not in [0, 0.5)")
        if self.label_smoothing and self.gan_loss not in ("vanilla", "lsgan"):
            bad("label_smoothing", f"applies to the vanilla and lsgan losses, not {self.gan_loss}")
        if self.gan_loss == "wgan-gp" and self.d_norm == "batch":
            bad("d_norm", "batch normalisation mixes the images of a batch, which breaks wgan-gp's per-image "
                          "gradient penalty; use --d-norm instance, group or none")
        if self.decay_epochs > self.epochs:
            bad("decay_epochs", f"{self.decay_epochs} is more than --epochs {self.epochs}")
        if self.skip_connections and self.model != "autoencoder":
            bad("skip_connections", f"only applies to --model autoencoder (the {self.model} U-Net always has them)")
        if self.loss != "l1" and self.model == "pix2pix":
            bad("loss", "pix2pix trains with --gan-loss + lambda * L1; --loss applies to unet-l1 and autoencoder")
        for name in ("data", "checkpoint_dir"):
            if not getattr(self, name).strip():
                bad(name, "must not be empty")
        if self.run_name and (os.sep in self.run_name or self.run_name in (".", "..")):
            bad("run_name", f"{self.run_name!r} must be a plain name, not a path")

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from .atomic import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
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
        return cls.from_dict(values)


def default_precision() -> str:
    """bf16 where the CPU computes bfloat16 natively (AMX or AVX-512 BF16) and no GPU is visible."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    if "amx_bf16" not in flags and "avx512_bf16" not in flags:
        return "fp32"
    return "fp32" if _has_gpu() else "bf16"


def _has_gpu() -> bool:
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))


def unet_depth(image_size: int) -> int:
    return max(1, min(8, int(math.log2(max(image_size, 1)))))


# ---- command line -------------------------------------------------------------------------------
class OneLineErrorParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (plus a hint) instead of the full usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field, defaults shown in --help."""
    defaults = Config()
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f.metadata.get("help", "")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default: {'on' if default else 'off'})".replace("%", "%%"))
            continue
        kind = {"int": int, "float": float, "str": str, "list[str]": _parse_list}.get(str(f.type), str)
        shown = ",".join(default) if isinstance(default, list) else default
        parser.add_argument(flag, type=kind, default=None, choices=f.metadata.get("choices"),
                            metavar=f.name.upper() if not f.metadata.get("choices") else None,
                            help=f"{help_text} (default: {shown!r})".replace("%", "%%"))


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The Config fields given on the command line (flags left out are None)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def config_from_overrides(overrides: dict, base: Config | None = None) -> Config:
    cfg = dataclasses.replace(base or Config(), **overrides)
    cfg.validate()
    return cfg
