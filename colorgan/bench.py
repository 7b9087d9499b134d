"""Kept so that `python -m colorgan.bench`, as earlier versions documented it, still works: the code is
colorgan/evaluation/bench.py (`python -m colorgan.evaluation.bench`)."""
import runpy

if __name__ == "__main__":
    runpy.run_module("colorgan.evaluation.bench", run_name="__main__", alter_sys=True)
