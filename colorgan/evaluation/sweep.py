"""Hyperparameter grid search: train every combination as its own run, evaluate each, rank them.

    python -m colorgan.evaluation.sweep --grid "lr=1e-4,2e-4 lambda_l1=10,100" --epochs 5 --data /path/to/cifar10 --classes horse

Values are typed as the flags are (cli.parse_value). A list field takes one list per value, its items
joined with "+": --grid "classes=horse,deer+cat" trains on horses, then on deer and cats.
Runs are named <prefix>-<key>=<value>-..., so an interrupted sweep is continued by running the same
command again: finished runs are kept, unfinished ones resumed. The ranked table goes to
reports/<prefix>/ranking.md and .csv.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from pathlib import Path

from colorgan.cli import OneLineErrorParser, add_config_arguments, format_value, overrides_from_args, parse_value
from colorgan.config import Config, config_from_overrides
from colorgan.errors import ColorganError

log = logging.getLogger("colorgan")
RANK_METRICS = ("psnr", "ssim", "auc", "accuracy", "frechet", "colourfulness_gap")


def parse_grid(text: str) -> list[dict]:
    """'lr=1e-4,2e-4 lambda_l1=10,100' -> the 4 combinations as dicts of typed Config values."""
    names = {f.name for f in dataclasses.fields(Config)}
    axes = []
    for item in text.split():
        key, sep, values = item.partition("=")
        key = key.replace("-", "_")
        if not sep or not values:
            raise ColorganError(f"--grid: {item!r} is not key=value[,value...]")
        if key not in names:
            raise ColorganError(f"--grid: unknown config key {key!r}")
        try:
            axes.append([(key, parse_value(key, v.replace("+", ","))) for v in values.split(",")])
        except ValueError as e:
            raise ColorganError(f"--grid: {item!r}: {e}") from None
    if not axes:
        raise ColorganError("--grid is empty")
    return [dict(combo) for combo in itertools.product(*axes)]


def run_name(prefix: str, combo: dict) -> str:
    return prefix + "-" + "-".join(f"{k}={format_value(v).replace(',', '+')}" for k, v in combo.items())


def sweep_configs(grid: str, base: dict, prefix: str) -> list[Config]:
    """One validated Config per combination of the grid, on top of the flags given (`base`)."""
    combos = parse_grid(grid)
    clash = sorted(set(base) & set(combos[0]))
    if clash:
        raise ColorganError(f"--grid and a flag both set {', '.join(clash)}")
    return [config_from_overrides({**base, **combo, "run_name": run_name(prefix, combo)}) for combo in combos]


def rank_value(row: dict, metric: str, truth_colourfulness: float) -> float:
    """Higher is better for every ranking metric (distances are negated)."""
    if metric == "frechet":
        return -row.get("frechet", float("inf"))
    if metric == "colourfulness_gap":
        return -abs(row["colourfulness"] - truth_colourfulness)
    return row.get(metric, float("-inf"))


def main(argv=None) -> int:
    parser = OneLineErrorParser(prog="python -m colorgan.evaluation.sweep",
                                description="Train every combination of --grid as its own run, evaluate each "
                                            "and write a ranked table. Other flags are train.py's.")
    parser.add_argument("--grid", required=True, help="space-separated key=v1,v2 (config keys, e.g. lr, lambda_l1)")
    parser.add_argument("--prefix", default="", help="run name prefix (default: sweep-<date>-<time>)")
    parser.add_argument("--rank-by", default="psnr", choices=RANK_METRICS, help="default: %(default)s")
    parser.add_argument("--eval-limit", type=int, default=0, help="evaluate on at most N images (default: all)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    from colorgan.cli import import_tensorflow_quietly
    import_tensorflow_quietly()
    from colorgan.evaluation.scores import TRUTH, evaluate_run, load_classifier_if_any, print_table, write_comparison
    from colorgan.training.loop import resume, train
    from colorgan.training.runs import load_run

    prefix = args.prefix or time.strftime("sweep-%Y%m%d-%H%M%S")
    configs = sweep_configs(args.grid, overrides_from_args(args), prefix)
    log.info("sweep %s: %d runs", prefix, len(configs))
    classifier = load_classifier_if_any(None)
    results = []
    for i, cfg in enumerate(configs, 1):
        run_dir = Path(cfg.checkpoint_dir) / cfg.run_name
        log.info("[%d/%d] %s", i, len(configs), cfg.run_name)
        if (run_dir / "config.json").exists():
            resume(run_dir)
        else:
            train(cfg)
        results.append(evaluate_run(load_run(run_dir), limit=args.eval_limit, classifier=classifier))

    truth = results[0]["rows"][TRUTH].get("colourfulness", 0.0)
    ranked = sorted(results, key=lambda r: rank_value(r["rows"][Path(r["run"]).name], args.rank_by, truth),
                    reverse=True)
    out = Path("reports") / prefix
    header, body = write_comparison(out, ranked, name="ranking",
                                    heading=f"Ranked by {args.rank_by}; grid: `{args.grid}`")
    print_table(header, body)
    print(f"written: {out}/ranking.md, ranking.csv, metrics.json")
    return 0


if __name__ == "__main__":
    from colorgan.cli import run_main, setup_logging
    setup_logging()
    run_main("python -m colorgan.evaluation.sweep", main)
