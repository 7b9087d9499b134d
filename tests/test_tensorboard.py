"""TensorBoard logs of a run (tensorboard_logs.py, callbacks.TensorBoardLog), read back from the event files
with TensorFlow's own reader and checked against history.csv, samples/ and config.json."""
import csv
import json
from collections import defaultdict

import pytest
import tensorflow as tf

from colorgan.training import tensorboard_logs
from colorgan.training import loop as training
from colorgan.config import Config
from conftest import tiny_config

LR, D_LR = 2e-4, 1e-4
# 2 short epochs of pix2pix (a discriminator, so two learning rates) with a cosine schedule, whose rates at
# the epochs' ends are known: half of each rate after epoch 1 of 2, zero after epoch 2.
FAST = dict(classes=["horse"], image_size=16, base_filters=4, steps_per_epoch=2, val_steps=1, num_samples=2,
            lr=LR, d_lr=D_LR, lr_schedule="cosine")


def read_logs(folder) -> dict:
    """{tag: {step: [Summary.Value, ...]}} of every event file in folder (not below), in file order.

    Every value is kept, so a step written twice shows as two; the plugin metadata a value carries is
    copied to the values of its tag that lack it (a writer may store it with a tag's first value only).
    """
    logs, metadata = defaultdict(lambda: defaultdict(list)), {}
    for path in sorted(folder.glob("*tfevents*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    metadata[value.tag] = value.metadata
                else:
                    value.metadata.CopyFrom(metadata[value.tag])
                logs[value.tag][event.step].append(value)
    return logs


def scalars(logs: dict, tag: str) -> dict:
    """{step: [float, ...]} of a scalar tag."""
    assert all(v.metadata.plugin_data.plugin_name == "scalars" for vs in logs[tag].values() for v in vs), tag
    return {step: [float(tf.make_ndarray(v.tensor)) for v in values] for step, values in logs[tag].items()}


def history(run) -> list[dict]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def check_losses_equal_history(run, epochs: int):
    """Each loss column of history.csv that has values is one curve, one value per epoch, equal to the row's."""
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    train, validation = read_logs(run / "logs" / "train"), read_logs(run / "logs" / "validation")
    columns = [c for c in rows[0] if c not in ("epoch", "seconds") and rows[0][c] != ""]
    assert {"g_total", "g_gan", "g_l1", "d", "val_g_total", "val_g_gan", "val_g_l1", "val_d"} <= set(columns)
    assert {t for t in train if t.startswith("loss/")} == {f"loss/{c}" for c in columns if not c.startswith("val_")}
    assert set(validation) == {f"loss/{c[4:]}" for c in columns if c.startswith("val_")}
    for column in columns:
        logs, tag = (validation, f"loss/{column[4:]}") if column.startswith("val_") else (train, f"loss/{column}")
        expected = {int(r["epoch"]): [pytest.approx(float(r[column]), rel=1e-6, abs=1e-6)] for r in rows}
        assert scalars(logs, tag) == expected, column
    return train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = tiny_config(epochs=2, checkpoint_dir=str(tmp_path_factory.mktemp("tb")), run_name="run", **FAST)
    return training.train(cfg, verbose=0)


def test_losses_per_epoch_equal_history_csv(run):
    check_losses_equal_history(run, epochs=2)


def test_learning_rates_are_logged_per_epoch(run):
    train = read_logs(run / "logs" / "train")
    assert scalars(train, "learning_rate/generator") == {1: [pytest.approx(LR / 2)], 2: [pytest.approx(0.0, abs=1e-9)]}
    assert scalars(train, "learning_rate/discriminator") == {1: [pytest.approx(D_LR / 2)],
                                                             2: [pytest.approx(0.0, abs=1e-9)]}


def test_each_epoch_logs_the_sample_grid_it_saved(run):
    images = read_logs(run / "logs" / "train")["samples"]
    assert sorted(images) == [1, 2]
    for step, (value,) in images.items():
        assert value.metadata.plugin_data.plugin_name == "images"
        width, height, png = tf.make_ndarray(value.tensor)  # tf.summary.image's layout: width, height, images
        assert png == (run / "samples" / f"epoch_{step:03d}.png").read_bytes()
        assert tf.io.decode_png(png).shape[:2] == (int(height), int(width))


def test_the_config_is_logged_as_text(run):
    logs = read_logs(run / "logs")
    (value,) = logs["config"][0]
    assert value.metadata.plugin_data.plugin_name == "text"
    text = tf.make_ndarray(value.tensor).item().decode()
    assert json.loads(text) == json.loads((run / "config.json").read_text())


def test_hparams_record_the_config(run):
    """The HParams dashboard's record; written where the tensorboard package is installed (else text only)."""
    pytest.importorskip("tensorboard.plugins.hparams.api", reason="tensorboard is not installed: config as text only")
    from tensorboard.plugins.hparams import metadata

    (value,) = read_logs(run / "logs")[tensorboard_logs.HPARAMS_TAG][0]
    assert value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    info = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
    hparams = {name: getattr(v, v.WhichOneof("kind")) for name, v in info.hparams.items()}
    assert hparams == tensorboard_logs.hparam_values(Config.load(run / "config.json"))
    assert (hparams["lr"], hparams["classes"], hparams["steps_per_epoch"], hparams["tensorboard"]) == \
        (LR, "horse", 2, True)
    assert info.group_name == "run"


def test_no_tensorboard_writes_no_logs(tmp_path):
    run = training.train(tiny_config(epochs=1, checkpoint_dir=str(tmp_path), run_name="off", tensorboard=False,
                                     **FAST), verbose=0)
    assert (run / "history.csv").exists() and not (run / "logs").exists()
    assert json.loads((run / "config.json").read_text())["tensorboard"] is False
    assert Config.load(run / "config.json").tensorboard is False


def test_config_json_without_the_key_loads_with_logs_on(tmp_path):
    values = Config().to_dict()
    del values["tensorboard"]  # written before the field existed (same schema: the default applies)
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert Config.load(tmp_path / "config.json").tensorboard is True


def test_resume_continues_the_curves_with_one_value_per_step(tmp_path):
    run = training.train(tiny_config(epochs=2, checkpoint_dir=str(tmp_path), run_name="r", **FAST), verbose=0)
    # A kill after epoch 3's summaries were written but before its checkpoint, the last record half-written.
    for folder in ("train", "validation"):
        writer = tf.summary.create_file_writer(str(run / "logs" / folder))
        with writer.as_default(step=3):
            tensorboard_logs.write_scalar("loss/g_total", 1e6, 3)
            if folder == "train":
                tensorboard_logs.write_scalar("learning_rate/generator", 1e6, 3)
        writer.close()
    stale = sorted((run / "logs" / "train").glob("*tfevents*"))[-1]
    with open(stale, "ab") as f:
        f.write(stale.read_bytes()[:20])  # a record's length and checksum, then only part of its data
    assert not tensorboard_logs.read_events(stale)[1]
    assert scalars(read_logs(run / "logs" / "validation"), "loss/g_total")[3] == [1e6]

    training.resume(run, epochs=3, verbose=0)
    train = check_losses_equal_history(run, epochs=3)  # one value per step 1..3, each history.csv's
    assert {step: len(v) for step, v in scalars(train, "learning_rate/generator").items()} == {1: 1, 2: 1, 3: 1}
    assert {step: len(v) for step, v in train["samples"].items()} == {1: 1, 2: 1, 3: 1}
    config = read_logs(run / "logs")["config"]  # one config record, the resumed run's
    assert list(config) == [0] and len(config[0]) == 1
    assert json.loads(tf.make_ndarray(config[0][0].tensor).item().decode())["epochs"] == 3
