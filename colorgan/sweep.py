"""Kept so that `python -m colorgan.sweep`, as earlier versions documented it, still works: the code is
colorgan/evaluation/sweep.py (`python -m colorgan.evaluation.sweep`)."""
import runpy

if __name__ == "__main__":
    runpy.run_module("colorgan.evaluation.sweep", run_name="__main__", alter_sys=True)
