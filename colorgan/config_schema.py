"""config.json's versions: the schema version this colorgan writes, and how files written by earlier versions
are brought up to it, one version at a time, when loaded (`migrate`), so old runs still resume, evaluate and
colorize. Also the value "auto" as config.json writes it (config.py's fields use it). Nothing here imports
config.py: Config imports this.
"""
from __future__ import annotations

from colorgan.errors import ColorganError

AUTO = "auto"
SCHEMA_VERSION = 10


# Schema 1 (files without "schema"): "auto" was written 0 in these fields and "" in run_name, and these
# fields did not exist yet; the values below are what such runs trained with.
V1_AUTO_ZERO = ("image_size", "batch_size", "steps_per_epoch", "val_steps", "d_lr", "decay_epochs")
V1_ADDED_LATER = {
    "norm": "batch", "g_dropout": 0.5, "d_norm": "batch", "spectral_norm": False, "d_dropout": 0.0,
    "gan_loss": "vanilla", "gp_weight": 10.0, "critic_steps": 1, "label_smoothing": 0.0, "l1_warmup_epochs": 0,
    "d_lr": 0.0, "lr_schedule": "constant", "decay_epochs": 0, "clip_norm": 0.0, "xla": "off", "strategy": "none",
}


def _from_schema_1(values: dict) -> dict:
    values = {**V1_ADDED_LATER, **values}
    for name in V1_AUTO_ZERO:
        if values.get(name) == 0:
            values[name] = AUTO
    if values.get("run_name") == "":
        values["run_name"] = AUTO
    return values


# Schema 2 -> 3: the pretrained encoder, colour classification, the colourfulness term and the vividness
# control were added; runs before them trained and colorize with these values.
V2_ADDED_LATER = {"generator": "unet", "freeze_encoder_epochs": 0, "ab_loss": "l1", "colourfulness_weight": 0.0,
                  "vividness": 1.0}


def _from_schema_2(values: dict) -> dict:
    return {**V2_ADDED_LATER, **values}


# Schema 3 -> 4: --init-from (fine-tuning) and --more-data were added; earlier runs started from scratch on
# one folder.
def _from_schema_3(values: dict) -> dict:
    return {"init_from": "none", "more_data": [], **values}


# Schema 4 -> 5: --rebalance-mix was added; earlier classification runs used Zhang's 0.5.
def _from_schema_4(values: dict) -> dict:
    return {"rebalance_mix": 0.5, **values}


# Schema 5 -> 6: --split-seed was added; earlier runs split their data with --seed, which "auto" still does.
def _from_schema_5(values: dict) -> dict:
    return {"split_seed": AUTO, **values}


# Schema 6 -> 7: the perceptual term and the critic warm-up (NoGAN) were added; earlier runs had neither.
def _from_schema_6(values: dict) -> dict:
    return {"perceptual_weight": 0.0, "critic_warmup_epochs": 0, **values}


# Schema 7 -> 8: --degrade was added; earlier runs trained on clean gray inputs.
def _from_schema_7(values: dict) -> dict:
    return {"degrade": 0.0, **values}


# Schema 8 -> 9: --chroma-weight and --hints were added; earlier runs trained with neither.
def _from_schema_8(values: dict) -> dict:
    return {"chroma_weight": 0.0, "hints": False, **values}


# Schema 9 -> 10: --cast-correction was added; earlier runs colorize without it.
def _from_schema_9(values: dict) -> dict:
    return {"cast_correction": 0.0, **values}


MIGRATIONS = {1: _from_schema_1, 2: _from_schema_2, 3: _from_schema_3, 4: _from_schema_4,
              5: _from_schema_5, 6: _from_schema_6, 7: _from_schema_7, 8: _from_schema_8,
              9: _from_schema_9}  # schema N -> N + 1


def migrate(values: dict) -> dict:
    """A config.json's values brought to SCHEMA_VERSION, one version at a time (without the "schema" key)."""
    values = dict(values)
    version = values.pop("schema", 1)
    if not isinstance(version, int) or version < 1:
        raise ColorganError(f"config schema {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise ColorganError(f"config schema {version} is newer than this colorgan reads ({SCHEMA_VERSION}); "
                            f"update colorgan")
    while version < SCHEMA_VERSION:
        values = MIGRATIONS[version](values)
        version += 1
    return values
