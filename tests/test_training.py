import csv
import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from colorgan.training import callbacks
from colorgan.evaluation import scores as evaluation
from colorgan.training import losses
from colorgan.training import runs
from colorgan.training import trainers
from colorgan.training import loop as training
from colorgan.config import Config
from colorgan.data.sources import find_source
from colorgan.data.pipeline import eval_dataset, train_dataset
from conftest import ROOT, SAMPLE, copy_images, tiny_config
import kill_resume
from kill_resume import checkpoint_progress


def test_one_train_step_changes_weights_and_gives_finite_losses():
    cfg = tiny_config()
    model = trainers.build_trainer(cfg)
    x = tf.random.uniform((4, 32, 32, 1), -1, 1)
    y = tf.random.uniform((4, 32, 32, 2), -1, 1)
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    logs = model.train_step((x, y))
    assert set(logs) == set(losses.LOSS_NAMES)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["g_total"]) == pytest.approx(float(logs["g_gan"]) + 100 * float(logs["g_l1"]), rel=1e-5)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(g_before, model.generator.trainable_weights))
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(d_before, model.discriminator.trainable_weights))
    assert int(model.g_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 1


def test_bf16_keeps_float32_variables_and_outputs():
    model = trainers.build_trainer(tiny_config(precision="bf16"))
    assert all(w.dtype == "float32" for w in model.generator.weights)
    out = model.generator(tf.zeros((1, 32, 32, 1)))
    assert out.dtype == tf.float32
    assert keras.mixed_precision.global_policy().name == "float32"  # not left changed for the caller


def test_seed_repeats_initialisation_and_data_order():
    cfg = tiny_config(classes=["horse"]).resolved(32)
    source = find_source(cfg)
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(cfg.seed)
        model = trainers.build_trainer(cfg)
        batch = next(iter(train_dataset(source.train, size=cfg.image_size, batch_size=cfg.batch_size,
                                        color_space=cfg.color_space, jitter=cfg.jitter, seed=cfg.seed)))
        runs.append((model.generator.weights[0].numpy(), batch[0].numpy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_two_epochs_write_every_artefact_then_resume_continues_at_epoch_three(tmp_path):
    cfg = tiny_config(data=str(SAMPLE), classes=["horse", "deer"], epochs=2, batch_size=16,
                      checkpoint_dir=str(tmp_path), run_name="run")  # 80 real training images
    run = training.train(cfg, verbose=0)
    assert run == tmp_path / "run"
    saved = json.loads((run / "config.json").read_text())
    assert saved["image_size"] == 32 and saved["batch_size"] == 16 and saved["epochs"] == 2
    history = read_csv(run / "history.csv")
    assert [int(r["epoch"]) for r in history] == [1, 2]
    for column in ("g_total", "g_gan", "g_l1", "d", "val_g_total", "val_g_gan", "val_g_l1", "val_d"):
        assert all(np.isfinite(float(r[column])) for r in history), column
    assert (run / "samples" / "epoch_001.png").stat().st_size > 1000
    assert (run / "samples" / "epoch_002.png").exists()
    assert (run / "state" / "checkpoint").exists()

    generator = keras.models.load_model(run / "generator.keras", compile=False)
    x = tf.random.uniform((2, 32, 32, 1), -1, 1)
    steps_per_epoch = 80 // 16

    run2 = training.resume(run, epochs=3, verbose=0)
    assert run2 == run
    history = read_csv(run / "history.csv")
    assert [int(r["epoch"]) for r in history] == [1, 2, 3]
    saved3 = json.loads((run / "config.json").read_text())
    assert {k: v for k, v in saved3.items() if k != "epochs"} == {k: v for k, v in saved.items() if k != "epochs"}
    assert (run / "samples" / "epoch_003.png").exists()
    # The optimizer state came back: its step count went on from 2 epochs' worth.
    model = trainers.build_trainer(Config.from_dict(saved3))
    state = runs.TrainingState(model, run / "state")
    assert state.restore() == (3, 0)
    assert int(model.g_optimizer.iterations) == 3 * steps_per_epoch
    # ... and so did the weights: the epoch-2 generator differs from the restored epoch-3 one.
    assert not np.allclose(generator(x).numpy(), model.generator(x).numpy())
    # Nothing to do once done.
    training.resume(run, verbose=0)
    assert len(read_csv(run / "history.csv")) == 3


def test_resume_drops_history_rows_past_the_checkpoint(tmp_path):
    run = training.train(tiny_config(classes=["horse"], epochs=1, checkpoint_dir=str(tmp_path), run_name="r",
                                     num_samples=0), verbose=0)
    rows = read_csv(run / "history.csv")
    with open(run / "history.csv", "a") as f:  # a kill between the history write and the checkpoint
        f.write("2," + ",".join(["1.0"] * (len(runs.HISTORY_COLUMNS) - 2)) + ",1.0\n")
    training.resume(run, epochs=2, verbose=0)
    after = read_csv(run / "history.csv")
    assert [int(r["epoch"]) for r in after] == [1, 2]
    assert after[0] == rows[0] and after[1]["g_total"] != "1.0"


def test_generator_reloads_in_a_process_without_colorgan(tmp_path):
    run = training.train(tiny_config(classes=["horse"], epochs=1, checkpoint_dir=str(tmp_path), run_name="r",
                                     num_samples=0), verbose=0)
    x = np.linspace(-1, 1, 32 * 32, dtype="float32").reshape(1, 32, 32, 1)
    np.save(tmp_path / "x.npy", x)
    expected = keras.models.load_model(run / "generator.keras", compile=False)(x).numpy()
    code = ("import sys, numpy as np, keras\n"
            "assert 'colorgan' not in sys.modules\n"
            f"m = keras.models.load_model({str(run / 'generator.keras')!r}, compile=False)\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m(np.load({str(tmp_path / 'x.npy')!r})).numpy())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)


def test_existing_run_is_not_overwritten(tmp_path):
    from colorgan.errors import ColorganError
    cfg = tiny_config(classes=["horse"], epochs=1, checkpoint_dir=str(tmp_path), run_name="r", num_samples=0)
    training.train(cfg, verbose=0)
    with pytest.raises(ColorganError, match="already holds a run"):
        training.train(cfg, verbose=0)
    (tmp_path / "r" / "config.json").unlink()  # its checkpoint is still there: a new run must not go on from it
    with pytest.raises(ColorganError, match="already holds a run"):
        training.train(cfg, verbose=0)


# ---- the command line ----------------------------------------------------------------------------
def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_help_lists_every_flag_with_its_default():
    out = run_cli("--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for name in [f.replace("_", "-") for f in Config.__dataclass_fields__] + ["resume"]:
        assert f"--{name}" in text, name
    assert "--export" in text
    assert "(default: 0.0002)" in text and "(default: 100.0)" in text and "(default: 'lab')" in text


@pytest.mark.parametrize("args, message", [
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--lr", "abc"], "--lr: 'abc' is not a number"),
    (["--lr", "-1"], "--lr: -1.0 is not a positive number"),
    (["--image-size", "48"], "--image-size: 48 is not a power of two"),
    (["--color-space", "hsv"], "invalid choice: 'hsv'"),
    (["--val-split", "1.5"], "--val-split"),
    (["--data", "/no/such/place"], "no such file or folder"),
    (["--resume", "/no/such/run"], "no such run directory"),
    (["--resume", "/tmp", "--lr", "1e-3"], "only --epochs may be given"),
])
def test_bad_flags_give_one_line_errors(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_progress_log_gives_the_epochs_step_and_time_left_each_minute(caplog):
    now = [0.0]
    # A resumed epoch, fitted on its own: 40 of its 100 steps were done before.
    progress = callbacks.ProgressLog(epochs=3, steps_per_epoch=100, offset=lambda: 40, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="colorgan"):
        progress.on_epoch_begin(1)
        now[0] = 10.0  # the first step, tracing included, is left out of the rate
        progress.on_train_batch_end(0, {"g_l1": 0.5})
        for batch in range(1, 35):  # then 2 s a step: the minute is up after the 26th step
            now[0] += 2.0
            progress.on_train_batch_end(batch, {"g_l1": 0.25, "d": 1.0})
    assert [r.getMessage() for r in caplog.records] == [
        "epoch 2/3: step 66/100 (66%), 01:00 so far, about 01:08 left in the epoch; g_l1 0.25, d 1"]


def test_a_run_logging_to_a_file_reports_progress_within_the_epoch(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(callbacks, "PROGRESS_SECONDS", 0.0)
    cfg = tiny_config(classes=["horse"], epochs=1, batch_size=8, checkpoint_dir=str(tmp_path), run_name="r",
                      num_samples=0)
    with caplog.at_level(logging.INFO, logger="colorgan"):
        training.train(cfg, verbose=2)  # verbose 2: what a run with its output in a file gets
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1: step ")]
    assert steps[0].startswith("epoch 1/1: step 1/5 (20%)") and "left in the epoch" not in steps[0]
    assert steps[-1].startswith("epoch 1/1: step 5/5 (100%)") and "00:00 left in the epoch; " in steps[-1]
    assert "g_total " in steps[-1]


def test_cli_trains_and_resumes(tmp_path):
    data_dir = copy_images(sorted((SAMPLE / "train" / "horse").glob("*.jpg")), tmp_path / "horses")
    out = run_cli("--data", str(data_dir), "--epochs", "1", "--base-filters", "4", "--batch-size", "8",
                  "--checkpoint-dir", str(tmp_path / "ck"), "--run-name", "cli", "--precision", "fp32")
    assert out.returncode == 0, out.stderr
    assert "36 training images, 4 validation images" in out.stderr
    out = run_cli("--resume", str(tmp_path / "ck" / "cli"), "--epochs", "2", "--export", str(tmp_path / "exp"))
    assert out.returncode == 0, out.stderr
    assert "resuming" in out.stderr and "after epoch 1 of 2" in out.stderr
    assert (tmp_path / "exp" / "1" / "saved_model.pb").exists()
    assert len(read_csv(tmp_path / "ck" / "cli" / "history.csv")) == 2


# ---- learning on real data -------------------------------------------------------------------
@pytest.mark.realdata
def test_pix2pix_learns_color_on_real_cifar10_horses(shared_data, tmp_path):
    horses = sorted((shared_data / "cifar10" / "train" / "horse").glob("*.jpg"))
    root = tmp_path / "horses"
    copy_images(horses[:512], root / "train" / "horse")
    copy_images(horses[512:640], root / "test" / "horse")
    cfg = Config(data=str(root), image_size=32, batch_size=32, epochs=LEARN_EPOCHS, base_filters=32,
                 checkpoint_dir=str(tmp_path / "ck"), run_name="learn", num_samples=0, seed=0)
    run = training.train(cfg, verbose=0)
    history = read_csv(run / "history.csv")
    cfg = Config.load(run / "config.json")
    baseline = evaluation.gray_baseline_l1(eval_dataset(find_source(cfg).val, size=cfg.image_size, batch_size=cfg.batch_size,
                                                color_space=cfg.color_space))
    val_l1 = [float(r["val_g_l1"]) for r in history]
    curve = ", ".join(r["val_g_l1"][:6] for r in history)
    print(f"validation L1 on ab by epoch: {curve}; ab = 0 baseline: {baseline:.4f}")
    # An adversarial run oscillates from epoch to epoch: its best epoch must be clearly better than
    # keeping the photo gray, and its last one still better.
    assert min(val_l1) < 0.85 * baseline
    assert val_l1[-1] < 0.95 * baseline


LEARN_EPOCHS = 6


def test_sigterm_saves_the_epoch_in_progress_and_resume_finishes_it(tmp_path):
    import signal
    import time
    steps = 1000  # long enough that the signal lands inside the epoch
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(SAMPLE), "--image-size", "16", "--base-filters", "4",
           "--batch-size", "8", "--epochs", "1", "--steps-per-epoch", str(steps), "--val-steps", "1",
           "--num-samples", "2", "--precision", "fp32", "--checkpoint-dir", str(tmp_path), "--run-name", "term"]
    run = tmp_path / "term"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (run / "config.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    # At once: config.json comes before the model is traced, and a signal during set-up still stops
    # after a step, saved.
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    epochs, step, iterations = checkpoint_progress(run)
    assert (epochs, step) == (0, iterations) and 0 < step < steps  # exactly the steps done, in epoch 1
    assert f"interrupted; 0 epochs and {step} of {steps} steps saved in {run}" in err
    assert runs.read_history(run / "history.csv") == []
    out = subprocess.run([sys.executable, str(ROOT / "train.py"), "--resume", str(run)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming {run} in epoch 1 of 1, after its step {step} of {steps}" in out.stderr
    assert [int(r["epoch"]) for r in runs.read_history(run / "history.csv")] == [1]
    assert checkpoint_progress(run) == (1, 0, steps)  # the epoch has exactly its steps: none lost, none twice


def test_sigkill_at_random_moments_loses_nothing_past_the_last_checkpoint(tmp_path):
    # 20 epochs of 20 steps: more than the three kills (each within 6 s of the start) can let it finish
    report = kill_resume.stress(cycles=3, workdir=tmp_path, seed=1, epochs=20, steps=20)
    killed = [c for c in report["cycles"] if c["killed"]]
    assert len(killed) == 3 and any(c["target"] == "save" for c in killed), report["cycles"]
    assert report["problems"] == [], report
    assert report["final_history"] == list(range(1, 21)) and report["final_checkpoint"] == (20, 0, 400)


def test_a_diverging_run_stops_with_an_error_and_keeps_the_last_good_epoch(tmp_path):
    base = ["--data", str(SAMPLE), "--image-size", "16", "--base-filters", "4", "--batch-size", "8",
            "--steps-per-epoch", "3", "--val-steps", "1", "--num-samples", "2", "--precision", "fp32",
            "--checkpoint-dir", str(tmp_path), "--run-name", "nan", "--lr-schedule", "cosine"]
    good = subprocess.run([sys.executable, str(ROOT / "train.py"), *base, "--epochs", "1"], capture_output=True,
                          text=True, timeout=600)
    assert good.returncode == 0, good.stderr[-2000:]
    run = tmp_path / "nan"
    before = keras.models.load_model(run / "generator.keras", compile=False).get_weights()
    config = json.loads((run / "config.json").read_text())
    # A learning rate that blows the weights up (BatchNorm variances overflow). Under a schedule, because
    # a constant rate is a variable of the optimizer, which the checkpoint would restore.
    config["lr"] = 1e30
    (run / "config.json").write_text(json.dumps(config))
    bad = subprocess.run([sys.executable, str(ROOT / "train.py"), "--resume", str(run), "--epochs", "3"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-2000:]
    last = bad.stderr.strip().splitlines()[-1]
    assert "diverged in epoch 2" in last and "keeps epoch 1" in last and "Traceback" not in bad.stderr
    assert checkpoint_progress(run) == (1, 0, 3)  # epoch 1's checkpoint, 3 steps
    assert [int(r["epoch"]) for r in runs.read_history(run / "history.csv")] == [1]
    after = keras.models.load_model(run / "generator.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # not overwritten with broken weights


def test_damaged_runs_and_unwritable_places_give_one_line_errors(tmp_path):
    def one_line_error(out, message):
        lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith(("E0000", "W0000"))]
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
        assert message in lines[-1], lines[-1]

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    one_line_error(run_cli("--resume", str(garbage)), "not a readable config")
    (garbage / "config.json").write_text(json.dumps({"lr": 1e-3, "colour": "yes"}))
    one_line_error(run_cli("--resume", str(garbage)), "unknown config keys: colour")

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    one_line_error(run_cli("--data", str(SAMPLE), "--checkpoint-dir", str(a_file / "runs"), "--epochs", "1"),
                   "cannot write there")

    good = run_cli("--data", str(SAMPLE), "--image-size", "16", "--base-filters", "4", "--batch-size", "8",
                   "--epochs", "1", "--steps-per-epoch", "1", "--val-steps", "1", "--num-samples", "1",
                   "--precision", "fp32", "--checkpoint-dir", str(tmp_path), "--run-name", "r")
    assert good.returncode == 0, good.stderr[-2000:]
    for data in (tmp_path / "r" / "state").glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:100])  # truncated, as a full disk would leave it
    one_line_error(run_cli("--resume", str(tmp_path / "r"), "--epochs", "2"), "damaged")


def test_ctrl_c_is_handled_between_steps_and_twice_stops_at_once(tmp_path):
    import signal
    model = trainers.build_trainer(tiny_config(image_size=16, base_filters=4))
    state = runs.TrainingState(model, tmp_path / "state")
    stopper = callbacks.GracefulStop(state, steps_per_epoch=10)
    stopper.on_epoch_begin(2)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    with stopper.handling_signals():
        stopper.on_train_batch_end(3, {"g_total": 1.0})  # no signal yet: goes on
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: only noted by the handler
        assert stopper.requested == "SIGINT"
        with pytest.raises(callbacks.TrainingInterrupted):
            stopper.on_train_batch_end(4, {"g_total": 1.0})  # after the 5th step of the 3rd epoch
        assert runs.saved_progress(tmp_path) == (2, 5)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C stops at once
    assert signal.getsignal(signal.SIGINT) is before  # handlers given back

    at_end = callbacks.GracefulStop(state, steps_per_epoch=10)
    at_end.requested = "SIGTERM"
    at_end.on_train_batch_end(9, {"g_total": 1.0})  # the epoch's last step: the epoch is finished and recorded
    at_end.set_model(model)
    with pytest.raises(callbacks.TrainingInterrupted):
        at_end.on_epoch_end(0)
    assert runs.saved_progress(tmp_path) == (2, 5)  # nothing saved by the stopper at an epoch's end
