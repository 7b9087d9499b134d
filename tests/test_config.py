import dataclasses
import json

import pytest

from colorgan.config import SCHEMA_VERSION, Config, unet_depth
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


@pytest.mark.parametrize("bf16_cpu, gpu", [(True, False), (False, False), (True, True)])
def test_auto_precision_is_bfloat16_only_where_it_is_faster(monkeypatch, bf16_cpu, gpu):
    """bf16 for the U-Net on a CPU with bfloat16 arithmetic; EfficientNet-Lite0 (slower in bfloat16 there)
    in float32, and loaded for inference in float32 on every CPU; a GPU keeps the saved precision."""
    from colorgan import runtime
    monkeypatch.setattr(runtime, "cpu_computes_bfloat16", lambda: bf16_cpu)
    monkeypatch.setattr(runtime, "has_gpu", lambda: gpu)
    unet = Config(precision="auto").resolved(32).precision
    effnet = Config(model="unet-l1", generator="effnet-lite0", precision="auto").resolved(128).precision
    assert (unet, effnet) == (("bf16" if bf16_cpu and not gpu else "fp32"), "fp32")
    assert runtime.inference_in_float32("effnet-lite0") == (not gpu)
    assert runtime.inference_in_float32("unet") == (not gpu and not bf16_cpu)


def test_each_generator_takes_the_sizes_its_strides_divide():
    # The U-Net halves down to 1x1 (powers of two); the EfficientNet encoder stops at stride 32.
    Config(image_size=128).validate()
    Config(model="unet-l1", generator="effnet-lite0", image_size=160).validate()
    Config(model="unet-l1", generator="effnet-lite0", image_size=224).validate()
    with pytest.raises(ColorganError, match="not a power of two"):
        Config(image_size=160).validate()
    with pytest.raises(ColorganError, match="multiple of 32"):
        Config(model="unet-l1", generator="effnet-lite0", image_size=144).validate()


def test_unet_depth_follows_size():
    assert [unet_depth(s) for s in (16, 32, 64, 256, 512)] == [4, 5, 6, 8, 8]


@pytest.mark.parametrize("change, flag", [
    (dict(image_size=100), "--image-size"), (dict(image_size=8), "--image-size"),
    (dict(lr=0.0), "--lr"), (dict(beta1=1.0), "--beta1"), (dict(val_split=-0.1), "--val-split"),
    (dict(epochs=0), "--epochs"), (dict(color_space="hsv"), "--color-space"), (dict(lambda_l1=-1), "--lambda-l1"),
    (dict(run_name="a/b"), "--run-name"), (dict(precision="fp8"), "--precision"),
    (dict(generator="effnet-lite0", model="unet-l1", image_size=144), "--image-size"),
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


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def test_auto_is_written_one_way():
    """Every field that can be worked out is "auto" by default, in Python, on the command line and in JSON."""
    from colorgan.config import AUTO, allows_auto, field_types
    from colorgan.config_schema import V1_AUTO_ZERO
    auto_fields = [name for name, kind in field_types().items() if allows_auto(kind)]
    assert set(auto_fields) >= {"image_size", "batch_size", "steps_per_epoch", "val_steps", "d_lr", "decay_epochs"}
    assert all(getattr(Config(), name) == AUTO for name in auto_fields)
    assert Config().precision == Config().xla == Config().run_name == AUTO
    for name in V1_AUTO_ZERO:  # 0 no longer means auto: it is out of range
        with pytest.raises(ColorganError, match="--" + name.replace("_", "-")):
            dataclasses.replace(Config(), **{name: 0}).validate()


def test_schema_1_config_is_migrated():
    """The shipped weights' original config.json (schema 1: no version, 0 and "" for auto, 16 fields missing)."""
    old = json.loads((FIXTURES / "config_schema1.json").read_text())
    assert "schema" not in old and "gan_loss" not in old and old["steps_per_epoch"] == 0
    cfg = Config.load(FIXTURES / "config_schema1.json")
    cfg.validate()
    assert (cfg.image_size, cfg.base_filters, cfg.batch_size, cfg.epochs) == (128, 16, 16, 15)
    assert (cfg.steps_per_epoch, cfg.val_steps, cfg.d_lr, cfg.decay_epochs) == ("auto",) * 4
    assert (cfg.gan_loss, cfg.norm, cfg.d_norm, cfg.xla, cfg.strategy) == ("vanilla", "batch", "batch", "off", "none")
    assert cfg.to_dict()["schema"] == SCHEMA_VERSION
    assert (cfg.generator, cfg.ab_loss, cfg.colourfulness_weight, cfg.vividness) == ("unet", "l1", 0.0, 1.0)


def test_schema_2_config_is_migrated():
    """Schema 2 (before the pretrained encoder, colour classification and vividness): their old behaviour."""
    old = json.loads((FIXTURES / "config_schema2.json").read_text())
    assert old["schema"] == 2 and "ab_loss" not in old
    cfg = Config.load(FIXTURES / "config_schema2.json")
    assert (cfg.generator, cfg.freeze_encoder_epochs, cfg.ab_loss, cfg.colourfulness_weight, cfg.vividness) == \
        ("unet", 0, "l1", 0.0, 1.0)
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k != "schema"} == \
        {k: v for k, v in old.items() if k != "schema"}


def test_schema_3_config_is_migrated():
    """Schema 3 (the shipped config before --init-from and --more-data): a run from scratch on one folder."""
    old = json.loads((FIXTURES / "config_schema3.json").read_text())
    assert old["schema"] == 3 and "init_from" not in old
    cfg = Config.load(FIXTURES / "config_schema3.json")
    assert (cfg.init_from, cfg.more_data) == ("none", [])
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k != "schema"} == \
        {k: v for k, v in old.items() if k != "schema"}


def test_schema_4_config_is_migrated():
    """Schema 4 (the shipped config before --rebalance-mix): classification runs used Zhang's 0.5."""
    old = json.loads((FIXTURES / "config_schema4.json").read_text())
    assert old["schema"] == 4 and "rebalance_mix" not in old
    cfg = Config.load(FIXTURES / "config_schema4.json")
    assert cfg.rebalance_mix == 0.5
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}


def test_schema_versions_are_checked(tmp_path):
    values = Config().to_dict()
    for schema, message in ((99, "newer than this colorgan reads"), ("x", "not a version number")):
        (tmp_path / "c.json").write_text(json.dumps({**values, "schema": schema}))
        with pytest.raises(ColorganError, match=message):
            Config.load(tmp_path / "c.json")


def test_schema_5_config_is_migrated():
    """A run from before --split-seed split its data with --seed: "auto" does the same."""
    old = json.loads((FIXTURES / "config_schema5.json").read_text())
    assert old["schema"] == 5 and "split_seed" not in old
    cfg = Config.load(FIXTURES / "config_schema5.json")
    assert cfg.split_seed == "auto" and cfg.data_split_seed == cfg.seed == old["seed"]
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}


def test_shipped_weights_config_is_current():
    from colorgan.config import SCHEMA_VERSION
    path = __import__("pathlib").Path(__file__).parents[1] / "weights" / "config.json"
    assert json.loads(path.read_text())["schema"] == SCHEMA_VERSION
    assert not Config.load(path).data.startswith("..")


@pytest.mark.parametrize("name, text, value", [
    ("image_size", "64", 64), ("image_size", "auto", "auto"), ("lr", "1e-3", 1e-3), ("d_lr", "auto", "auto"),
    ("jitter", "false", False), ("jitter", "On", True), ("classes", "horse, deer", ["horse", "deer"]),
    ("run_name", "auto", "auto"), ("data", "auto", "auto"),
])
def test_values_are_parsed_from_the_annotations(name, text, value):
    from colorgan.cli import format_value, parse_value
    parsed = parse_value(name, text)
    assert parsed == value and type(parsed) is type(value)
    assert parse_value(name, format_value(parsed)) == parsed  # the CLI spelling parses back


@pytest.mark.parametrize("name, text", [("image_size", "1.5"), ("lr", "auto"), ("epochs", "auto"), ("jitter", "2")])
def test_values_of_the_wrong_type_are_refused(name, text):
    from colorgan.cli import parse_value
    with pytest.raises(ValueError):
        parse_value(name, text)


def test_fields_that_belong_to_one_model():
    with pytest.raises(ColorganError, match="--skip-connections: applies to --model autoencoder, not pix2pix"):
        Config(skip_connections=True).validate()
    with pytest.raises(ColorganError, match="--loss: applies to --model unet-l1 or autoencoder"):
        Config(loss="mse").validate()
    Config(model="autoencoder", skip_connections=True, loss="mse").validate()


def test_wrong_python_types_are_refused():
    """A value of the wrong type (e.g. a string where a list belongs) is caught, not read letter by letter."""
    for classes in ("horse", [1]):
        with pytest.raises(ColorganError, match="--classes"):
            Config(classes=classes).validate()
    with pytest.raises(ColorganError, match="--epochs"):
        Config(epochs="3").validate()


def test_schema_6_config_is_migrated():
    """The shipped config before the perceptual term and the critic warm-up: it trained with neither."""
    old = json.loads((FIXTURES / "config_schema6.json").read_text())
    assert old["schema"] == 6 and "perceptual_weight" not in old
    cfg = Config.load(FIXTURES / "config_schema6.json")
    assert (cfg.perceptual_weight, cfg.critic_warmup_epochs) == (0.0, 0)
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}


def test_schema_7_config_is_migrated():
    """The shipped config before --degrade: it trained on clean gray inputs."""
    old = json.loads((FIXTURES / "config_schema7.json").read_text())
    assert old["schema"] == 7 and "degrade" not in old
    cfg = Config.load(FIXTURES / "config_schema7.json")
    assert cfg.degrade == 0.0
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}


def test_schema_9_config_is_migrated():
    """The shipped config before --cast-correction: it colorized without it."""
    old = json.loads((FIXTURES / "config_schema9.json").read_text())
    assert old["schema"] == 9 and "cast_correction" not in old
    cfg = Config.load(FIXTURES / "config_schema9.json")
    assert cfg.cast_correction == 0.0 and cfg.vividness == old["vividness"]
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}


def test_schema_8_config_is_migrated():
    """The shipped config before --chroma-weight and --hints: it trained with neither."""
    old = json.loads((FIXTURES / "config_schema8.json").read_text())
    assert old["schema"] == 8 and "chroma_weight" not in old and "hints" not in old
    cfg = Config.load(FIXTURES / "config_schema8.json")
    assert (cfg.chroma_weight, cfg.hints) == (0.0, False)
    assert {k: v for k, v in cfg.to_dict().items() if k in old and k not in ("schema", "colorgan_version")} == \
        {k: v for k, v in old.items() if k not in ("schema", "colorgan_version")}
