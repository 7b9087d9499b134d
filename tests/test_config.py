import dataclasses
import json

import pytest

from colorgan.config import Config, unet_depth
from colorgan.errors import ColorganError


def test_defaults_are_the_pix2pix_recipe():
    cfg = Config()
    assert (cfg.lr, cfg.beta1, cfg.lambda_l1, cfg.color_space) == (2e-4, 0.5, 100.0, "lab")


def test_resolved_fills_auto_values():
    assert Config().resolved(32).image_size == 32 and Config().resolved(32).batch_size == 64
    big = Config().resolved(256)
    assert big.image_size == 256 and big.batch_size == 4
    assert Config(image_size=128).resolved(32).batch_size == 16
    assert Config(precision="fp32").resolved(32).precision == "fp32"
    assert Config().resolved(32).precision in ("fp32", "bf16")


def test_unet_depth_follows_size():
    assert [unet_depth(s) for s in (16, 32, 64, 256, 512)] == [4, 5, 6, 8, 8]


@pytest.mark.parametrize("change, flag", [
    (dict(image_size=100), "--image-size"), (dict(image_size=8), "--image-size"),
    (dict(lr=0.0), "--lr"), (dict(beta1=1.0), "--beta1"), (dict(val_split=-0.1), "--val-split"),
    (dict(epochs=0), "--epochs"), (dict(color_space="hsv"), "--color-space"), (dict(lambda_l1=-1), "--lambda-l1"),
    (dict(run_name="a/b"), "--run-name"), (dict(precision="fp8"), "--precision"),
])
def test_invalid_values_are_rejected_naming_the_flag(change, flag):
    with pytest.raises(ColorganError, match=flag):
        dataclasses.replace(Config(), **change).validate()


def test_json_round_trip_and_unknown_keys(tmp_path):
    cfg = Config(classes=["horse", "deer"], image_size=64, lr=1e-3)
    cfg.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json") == cfg
    values = json.loads((tmp_path / "config.json").read_text())
    values["learning_rate"] = 1
    (tmp_path / "bad.json").write_text(json.dumps(values))
    with pytest.raises(ColorganError, match="unknown config keys: learning_rate"):
        Config.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ColorganError, match="not a readable config"):
        Config.load(tmp_path / "broken.json")
