"""Kill a training run with SIGKILL at random moments (in a step, in a save), resume it each time, and check
that nothing is lost past the last checkpoint and that it ends with the right epochs and step count.

Used by tests/test_training.py (a few cycles) and on its own for the figures in docs/reliability.md:

    python tests/kill_resume.py --cycles 20 --epochs 60 [--seed 0] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "cifar10-mini"
EPOCHS, STEPS = 6, 20


def train_args(epochs: int, steps: int) -> list[str]:
    return ["--data", str(SAMPLE), "--image-size", "16", "--base-filters", "4", "--batch-size", "8",
            "--epochs", str(epochs), "--steps-per-epoch", str(steps), "--val-steps", "1", "--num-samples", "2",
            "--precision", "fp32"]


def checkpoint_progress(run: Path) -> tuple[int, int, int] | None:
    """(epochs, steps into the next, generator optimizer steps) of the latest checkpoint, read from disk."""
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(str(run / "state"))
    if latest is None:
        return None
    reader = tf.train.load_checkpoint(latest)  # raises if the files are damaged
    names = {name for name, _ in tf.train.list_variables(latest)}
    get = lambda n: int(reader.get_tensor(n)) if n in names else 0
    return (get("epoch/.ATTRIBUTES/VARIABLE_VALUE"), get("step/.ATTRIBUTES/VARIABLE_VALUE"),
            get("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def history_epochs(run: Path) -> list[int]:
    path = run / "history.csv"
    if not path.exists():
        return []
    return [int(line.split(",", 1)[0]) for line in path.read_text().splitlines()[1:] if line]


def _saving(run: Path) -> bool:
    """A save is under way: one of its temporary files exists."""
    return any(run.glob(".tmp-*")) or any((run / "samples").glob(".tmp-*")) or any((run / "state").glob("*_temp*"))


def _started(log: Path) -> bool:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "run directory:" in text or "resuming" in text


def one_cycle(cmd: list[str], run: Path, log: Path, rng: random.Random, target: str) -> dict:
    """Start cmd, kill it with SIGKILL during a step or a save (target), and describe what happened."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.time() + 240
    while not _started(log) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if target == "save":  # during the 1st, 2nd or 3rd save of this process
        for _ in range(rng.randint(1, 3)):
            while _saving(run) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.001)
            while not _saving(run) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.001)
    else:
        time.sleep(rng.uniform(0.5, 6.0))
    before = checkpoint_progress(run) if proc.poll() is None else None
    during_save = _saving(run)
    if proc.poll() is not None:
        return {"killed": False, "returncode": proc.returncode}
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = checkpoint_progress(run)  # must load: the last completed checkpoint is intact
    # Nothing older than the newest checkpoint seen before the kill: at most the steps since it are lost.
    lost_more = before is not None and (after is None or after[2] < before[2])
    rows = history_epochs(run)
    return {"killed": True, "target": target, "during_save": during_save, "checkpoint": after,
            "history": rows, "lost_more_than_steps_since_checkpoint": lost_more}


def stress(cycles: int, workdir: Path, seed: int = 0, epochs: int = EPOCHS, steps: int = STEPS) -> dict:
    """Kill-and-resume `cycles` times, then let the run finish; returns a report (see the module doc)."""
    rng = random.Random(seed)
    run = workdir / "killed"
    first = [sys.executable, str(ROOT / "train.py"), *train_args(epochs, steps), "--checkpoint-dir", str(workdir),
             "--run-name", "killed"]
    again = [sys.executable, str(ROOT / "train.py"), "--resume", str(run)]
    report = {"cycles": [], "problems": []}
    for i in range(cycles):
        cmd = again if (run / "config.json").exists() else first
        result = one_cycle(cmd, run, workdir / f"cycle{i}.log", rng, "save" if i % 2 else "step")
        report["cycles"].append(result)
        if not result["killed"]:
            break  # finished before the kill
        saved = result["checkpoint"][0] if result["checkpoint"] else 0
        if result["history"] != list(range(1, len(result["history"]) + 1)) or \
                len(result["history"]) not in (saved, saved + 1):
            report["problems"].append(f"cycle {i}: history {result['history']} vs checkpoint {result['checkpoint']}")
        if result["lost_more_than_steps_since_checkpoint"]:
            report["problems"].append(f"cycle {i}: an older checkpoint than the last one was restored")
    final = subprocess.run(again if (run / "config.json").exists() else first, capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
    report["final_returncode"] = final.returncode
    report["final_checkpoint"] = checkpoint_progress(run)
    report["final_history"] = history_epochs(run)
    if final.returncode != 0:
        report["problems"].append(f"final resume failed: {final.stderr[-1000:]}")
    if report["final_history"] != list(range(1, epochs + 1)):
        report["problems"].append(f"final history {report['final_history']}")
    if report["final_checkpoint"] != (epochs, 0, epochs * steps):
        report["problems"].append(f"final checkpoint {report['final_checkpoint']}, want {(epochs, 0, epochs * steps)}")
    killed = [c for c in report["cycles"] if c["killed"]]
    report["summary"] = {"kills": len(killed), "during_save": sum(c["during_save"] for c in killed),
                         "problems": len(report["problems"])}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of the run that is killed")
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per epoch")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from colorgan.cli import import_tensorflow_quietly
    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = stress(args.cycles, workdir, args.seed, args.epochs, args.steps)
    for i, c in enumerate(report["cycles"]):
        print(f"cycle {i}: " + json.dumps(c))
    print(json.dumps({k: report[k] for k in ("summary", "final_checkpoint", "final_history", "problems")}))
    raise SystemExit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
