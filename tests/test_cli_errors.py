"""Every bad flag value, unknown flag or impossible combination: one line on stderr, exit code 2, and
nothing built or written (the checks run before any model or run directory exists)."""
import dataclasses
import importlib.util

import pytest

from colorgan.cli import run_main
from colorgan.config import Config, allows_auto, base_type, field_types
from conftest import ROOT, SAMPLE


def _script(name):
    spec = importlib.util.spec_from_file_location(name.replace(".py", "_cli"), ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flag(field):
    return "--" + field.name.replace("_", "-")


def _type_errors():
    """For each Config flag, values of the wrong kind: not a choice, not a number, not a finite number."""
    types = field_types()
    cases = []
    for f in dataclasses.fields(Config):
        kind = base_type(types[f.name])
        if f.metadata.get("choices"):
            cases.append([_flag(f), "bogus"])
        elif kind is float:
            cases += [[_flag(f), "abc"], [_flag(f), "nan"], [_flag(f), "-inf"]]
        elif kind is int:
            cases += [[_flag(f), "abc"], [_flag(f), "1.5"]]
        elif kind is bool:
            cases.append([f"{_flag(f)}=yes"])
        if allows_auto(types[f.name]) and kind in (int, float):
            cases.append([_flag(f), "automatic"])
    return cases


OUT_OF_RANGE = [
    ["--image-size", "100"], ["--image-size", "8"], ["--epochs", "0"], ["--batch-size", "-1"],
    ["--base-filters", "0"], ["--critic-steps", "0"], ["--steps-per-epoch", "-1"], ["--val-steps", "-2"],
    ["--num-samples", "-1"], ["--l1-warmup-epochs", "-1"], ["--val-split", "1"], ["--lr", "0"], ["--beta1", "1"],
    ["--d-lr", "-1e-4"], ["--g-dropout", "1"], ["--d-dropout", "-0.1"], ["--label-smoothing", "0.5"],
    ["--gp-weight", "-1"], ["--clip-norm", "-1"], ["--lambda-l1", "-1"], ["--run-name", "a/b"], ["--run-name", ".."],
    ["--data", ""], ["--checkpoint-dir", " "], ["--image-size", "0"], ["--steps-per-epoch", "0"], ["--d-lr", "0"], ["--epochs", "5", "--decay-epochs", "6"],
    ["--gan-loss", "wgan-gp", "--d-norm", "batch"], ["--gan-loss", "hinge", "--label-smoothing", "0.1"],
    ["--skip-connections"], ["--loss", "mse"], ["--strategy", "multiworker"],
    ["--ab-loss", "classification", "--color-space", "rgb"], ["--freeze-encoder-epochs", "1"],
    ["--generator", "effnet-lite0", "--model", "autoencoder"], ["--generator", "effnet-lite0", "--image-size", "16"],
    ["--vividness", "0"], ["--colourfulness-weight", "-1"], ["--model", "unet-l1", "--ab-loss", "classification", "--loss", "mse"],
    ["--init-from", "no/such/run"], ["--init-from", " "], ["--more-data", "no/such/folder"],
    ["--no-such-flag"], ["--lr"], ["--classes", "zebra"], ["--data", "no/such/folder"],
    ["--resume", "no/such/run"], ["--resume", str(SAMPLE), "--lr", "1e-3"],
]


@pytest.mark.parametrize("argv", _type_errors() + OUT_OF_RANGE, ids=lambda a: " ".join(a))
def test_train_rejects_with_one_line(argv, tmp_path, capsys):
    train = _script("train.py")
    argv = argv + ["--checkpoint-dir", str(tmp_path / "ck")] if "--checkpoint-dir" not in argv else argv
    with pytest.raises(SystemExit) as exit_:
        run_main("train.py", lambda: train.main(argv))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2
    assert len(err) == 1 and err[0].startswith("train.py: error: "), err
    assert not (tmp_path / "ck").exists()  # nothing written


@pytest.mark.parametrize("script, argv", [
    ("evaluate.py", ["--limit", "-1"]), ("evaluate.py", ["--samples", "0"]), ("evaluate.py", ["--bogus"]),
    ("evaluate.py", ["--run", "no/such/run"]), ("evaluate.py", ["--run", str(SAMPLE), "--compare", str(SAMPLE)]),
    ("colorize.py", ["x.jpg", "--render-size", "0"]), ("colorize.py", ["no/such/photo.jpg"]),
    ("colorize.py", []), ("colorize.py", ["x.jpg", "--run", "a", "--model", "b"]),
    ("colorize.py", [str(SAMPLE), "--model", "no/such/model.keras"]),
    ("colorize.py", ["x.jpg", "--variants", "0"]), ("colorize.py", ["x.jpg", "--variants", "two"]),
    ("colorize.py", ["x.jpg", "--variants", "99"]), ("colorize.py", ["x.jpg", "--seed", "3"]),
    ("colorize.py", [str(SAMPLE), "--variants", "2", "--run", str(ROOT / "weights")]),
    ("serve.py", ["--port", "70000"]), ("serve.py", ["--port", "http"]), ("serve.py", ["--max-batch", "0"]),
    ("serve.py", ["--queue-size", "0"]), ("serve.py", ["--timeout", "0"]), ("serve.py", ["--max-upload-mb", "-1"]),
    ("serve.py", ["--batch-wait-ms", "-1"]), ("serve.py", ["--max-pixels", "0"]), ("serve.py", ["--vividness", "0"]),
    ("serve.py", ["--saved-model", "x", "--run", "y"]), ("serve.py", ["--port", "0", "--saved-model", "no/such"]),
    ("serve.py", ["--port", "0", "--run", "no/such/run"]), ("serve.py", ["--host", "no.such.host.invalid"]),
    ("serve.py", ["--bogus"]), ("serve.py", ["--api-key", "short"]),
    ("serve.py", ["--max-pixels-in-flight", "10"]),
])
def test_evaluate_and_colorize_reject_with_one_line(script, argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = _script(script)
    with pytest.raises(SystemExit) as exit_:
        run_main(script, lambda: module.main(argv))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2
    assert len(err) == 1 and err[0].startswith(f"{script}: error: "), err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_serve_on_a_taken_port_is_one_line(tmp_path, capsys, monkeypatch):
    import socket
    monkeypatch.chdir(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    module = _script("serve.py")
    try:
        with pytest.raises(SystemExit) as exit_:
            run_main("serve.py", lambda: module.main(["--port", str(taken.getsockname()[1])]))
    finally:
        taken.close()
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(err) == 1 and "cannot listen on 127.0.0.1:" in err[0], err


@pytest.mark.parametrize("script, argv", [
    ("evaluate.py", ["--run", "no/such/run"]), ("evaluate.py", ["--compare", str(SAMPLE), "no/such/run"]),
    ("colorize.py", ["no/such/photo.jpg"]),
])
def test_a_mistyped_path_is_reported_before_tensorflow_loads(script, argv, capsys, monkeypatch):
    """TensorFlow takes seconds to import: a path that does not exist is a one-line error before it."""
    from colorgan.commands import colorize, evaluate

    def no_tensorflow():
        raise AssertionError("TensorFlow was loaded before the paths were checked")
    for command in (colorize, evaluate):
        monkeypatch.setattr(command, "import_tensorflow_quietly", no_tensorflow)
    with pytest.raises(SystemExit) as exit_:
        run_main(script, lambda: _script(script).main(argv))
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith(f"{script}: error: ") and "no/such/" in err, err
