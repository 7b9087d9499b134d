"""The installable package: `colorgan COMMAND` takes the scripts' flags, reports its version (also in each
run's config.json), ends training with the commands to run next, and a wheel built from the checkout works
in a fresh virtual environment away from the checkout (shipped weights and embedded sample included)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import colorgan
from colorgan.commands import COMMANDS
from colorgan.commands.train import next_steps
from conftest import ROOT, SAMPLE

SCRIPTS = ("train", "evaluate", "colorize", "export", "serve")
TINY_TRAINING = ["--image-size", "16", "--base-filters", "4", "--batch-size", "8", "--val-steps", "1",
                 "--num-samples", "1", "--precision", "fp32"]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _console(*args, cwd=ROOT, timeout=300):
    """python -m colorgan ARGS, with the checkout importable from any cwd."""
    return subprocess.run([sys.executable, "-m", "colorgan", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**_env(), "PYTHONPATH": str(ROOT)})


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*", help_text))


# ---- the colorgan command -------------------------------------------------------------------------
def test_version_is_the_packages():
    out = _console("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"colorgan {colorgan.__version__}"


def test_help_lists_every_command_with_one_line():
    out = _console("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", out.stdout, re.M), name


@pytest.mark.parametrize("args", [["bogus"], ["--bogus"], []], ids=["unknown command", "unknown flag", "none"])
def test_a_bad_command_is_one_line_and_exit_2(args):
    out = _console(*args)
    assert out.returncode == 2 and out.stdout == ""
    lines = _lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("colorgan: error: "), out.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_and_subcommands_take_the_same_flags(name):
    script = subprocess.run([sys.executable, f"{name}.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env=_env())
    command = _console(name, "--help")
    assert script.returncode == 0 and command.returncode == 0, script.stderr + command.stderr
    assert script.stdout.startswith(f"usage: {name}.py ") and command.stdout.startswith(f"usage: colorgan {name} ")
    assert _flags(script.stdout) == _flags(command.stdout) and len(_flags(script.stdout)) > 2


@pytest.mark.parametrize("command", [[f"{name}.py"] for name in SCRIPTS] +
                         [["-m", "colorgan.evaluation.classifier"], ["-m", "colorgan.data.prepare"],
                          ["-m", "colorgan.evaluation.bench"], ["-m", "colorgan.evaluation.sweep"]] +
                         # the forms earlier versions documented, before the sub-packages: they still work
                         [["-m", f"colorgan.{name}"] for name in ("classifier", "prepare", "bench", "sweep")],
                         ids=lambda command: " ".join(command))
def test_help_is_the_help_alone(command):
    # TensorFlow prints start-up lines (absl, CUDA probing) on import; a command's --help shows none of them.
    out = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=_env())
    assert out.returncode == 0 and out.stdout.startswith("usage: ") and out.stderr == ""


def test_subcommand_errors_name_the_subcommand():
    out = _console("colorize", "x.jpg", "--render-size", "0")
    assert out.returncode == 2 and _lines(out.stderr) == [
        "colorgan colorize: error: --render-size must be at least 1 (see --help)"]
    out = _console("bench", "--steps", "0")
    assert out.returncode == 2 and _lines(out.stderr)[-1].startswith("colorgan bench: error: --steps"), out.stderr


# ---- the end of training ----------------------------------------------------------------------------
def test_training_records_the_version_and_ends_with_what_to_run_next(tmp_path):
    out = _console("train", "--data", SAMPLE, "--epochs", "1", "--steps-per-epoch", "1", *TINY_TRAINING,
                   "--checkpoint-dir", "ck", "--run-name", "r", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    saved = json.loads((tmp_path / "ck" / "r" / "config.json").read_text())
    assert saved["colorgan_version"] == colorgan.__version__ and saved["schema"]
    assert colorgan.Config.load(tmp_path / "ck" / "r" / "config.json").epochs == 1  # the key is not a field
    last = _lines(out.stderr)[-4:]
    assert last[0] == "run directory: ck/r"
    assert last[1].endswith("colorgan evaluate --run ck/r")
    assert last[2].endswith("colorgan colorize PHOTO --run ck/r -o colorized")
    assert last[3].endswith("tensorboard --logdir ck/r/logs")


def test_next_steps_follow_the_scripts_and_what_the_run_holds(tmp_path):
    run = tmp_path / "my run"
    run.mkdir()
    # Stopped before its first epoch ended: nothing to evaluate yet, only to resume.
    assert next_steps(run, "train.py", interrupted=True).splitlines() == [
        f"run directory: {run}", f"  continue it:  python train.py --resume '{run}'"]
    (run / "generator.keras").write_bytes(b"")
    (run / "logs").mkdir()
    text = next_steps(run, "train.py")
    assert text.splitlines()[0] == f"run directory: {run}"
    for command in (f"python evaluate.py --run '{run}'", f"python colorize.py PHOTO --run '{run}' -o colorized",
                    f"tensorboard --logdir '{run}/logs'"):
        assert command in text
    assert "--resume" not in text


def test_an_interrupted_run_says_how_to_resume_it(tmp_path, monkeypatch, capsys):
    from colorgan.training import loop as training
    from colorgan.commands import train as train_command
    run = tmp_path / "r"
    run.mkdir()

    def stopped(cfg, verbose=None):
        interrupt = KeyboardInterrupt()
        interrupt.run_dir = run  # as training.fit attaches it
        raise interrupt

    monkeypatch.setattr(training, "train", stopped)
    with pytest.raises(KeyboardInterrupt):
        train_command.main(["--data", str(SAMPLE), "--checkpoint-dir", str(tmp_path)], prog="colorgan train")
    assert _lines(capsys.readouterr().err)[-2:] == [f"run directory: {run}",
                                                   f"  continue it:  colorgan train --resume {run}"]


# ---- the wheel ---------------------------------------------------------------------------------------
# Left out of the copy the wheel is built from: runs, outputs and build leftovers (the package takes only
# the files pyproject.toml names, so this saves copying, nothing more).
NOT_COPIED = {"checkpoints", "reports", "exported", "colorized", "build", "dist", ".git", ".venv", ".pytest_cache",
              "__pycache__"}


def _copy_checkout(target: Path) -> Path:
    def ignore(folder, names):
        left_out = {n for n in names if n in NOT_COPIED or n.endswith(".egg-info")}
        if Path(folder).resolve() == ROOT / "data":  # user data beside the embedded sample
            left_out |= {n for n in names if n not in ("cifar10-mini", "README.md")}
        return left_out
    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def _venv(path: Path) -> Path:
    """A fresh venv that also sees the packages of the interpreter running the tests (TensorFlow, pip: not
    downloaded again), whether that is a venv, activated or not, or a system Python: a .pth file lists this
    interpreter's site-packages after the venv's own, so what is installed into the venv comes first. (A venv's
    "system site-packages" would be the base interpreter's, not the running one's.)"""
    import venv
    venv.create(path, with_pip=False)
    own = next(path.glob("lib/python*/site-packages"))
    running = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (own / "running_interpreter.pth").write_text("".join(f"{p}\n" for p in running))
    return path / "bin"


def _run(command, cwd, timeout=600):
    out = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env=_env())
    assert out.returncode == 0, f"{command}: {out.stderr[-3000:]}"
    return out


def test_a_wheel_installs_and_its_command_works_outside_the_checkout(tmp_path):
    missing = [m for m in ("venv", "pip", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"building and installing a wheel needs {', '.join(missing)}, not installed here")
    from PIL import Image

    source = _copy_checkout(tmp_path / "checkout")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
          source], cwd=tmp_path)
    wheel, = (tmp_path / "dist").glob("colorgan-*.whl")
    assert wheel.name.startswith(f"colorgan-{colorgan.__version__}-")
    bin_dir = _venv(tmp_path / "venv")
    _run([bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=tmp_path)

    away = tmp_path / "elsewhere"  # no checkout here or above: everything comes from the installed package
    away.mkdir()
    where = _run([bin_dir / "python", "-c", "import colorgan; print(colorgan.__file__)"], cwd=away).stdout
    assert str(tmp_path / "venv") in where and str(ROOT) not in where
    assert "colorize" in _run([bin_dir / "colorgan", "--help"], cwd=away).stdout

    # colorize with the shipped weights, on a real photo of the installed embedded sample
    photo = sorted((tmp_path / "venv").glob("lib/python*/site-packages/colorgan/sample/cifar10-mini/test/*/*.jpg"))[0]
    _run([bin_dir / "colorgan", "colorize", photo, "-o", "out"], cwd=away)
    with Image.open(photo) as original, Image.open(away / "out" / photo.name) as colorized:
        assert colorized.size == original.size and colorized.mode == "RGB"
    # variants: the shipped hint model travels in the wheel too
    _run([bin_dir / "colorgan", "colorize", photo, "--variants", "2", "--seed", "1", "-o", "variants"], cwd=away)
    assert sorted(p.name for p in (away / "variants").iterdir()) == sorted(
        f"{photo.stem}_variant{n}{suffix}" for n in (1, 2) for suffix in (photo.suffix, ".hints.json"))

    # train on the default data: the embedded sample, found inside the package
    out = _run([bin_dir / "colorgan", "train", "--epochs", "1", "--steps-per-epoch", "2", *TINY_TRAINING,
                "--checkpoint-dir", "ck"], cwd=away)
    run, = (away / "ck").iterdir()
    assert run.name.startswith("cifar10-mini-") and "colorgan/sample/cifar10-mini" in out.stderr
    assert (run / "generator.keras").is_file()
    assert json.loads((run / "config.json").read_text())["colorgan_version"] == colorgan.__version__
    assert f"colorgan evaluate --run ck/{run.name}" in out.stderr


def test_an_editable_install_uses_the_checkouts_files(tmp_path):
    missing = [m for m in ("venv", "pip", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"an editable install needs {', '.join(missing)}, not installed here")
    source = _copy_checkout(tmp_path / "checkout")
    bin_dir = _venv(tmp_path / "venv")
    _run([bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e",
          source], cwd=tmp_path)
    away = tmp_path / "elsewhere"
    away.mkdir()
    assert _run([bin_dir / "colorgan", "--version"], cwd=away).stdout.strip() == f"colorgan {colorgan.__version__}"
    found = _run([bin_dir / "python", "-c", "from colorgan import bundled; print(bundled.SHIPPED_WEIGHTS); "
                  "print(bundled.DATA_DIR)"], cwd=away).stdout.split()
    assert found == [str(source / "weights"), str(source / "data")]
