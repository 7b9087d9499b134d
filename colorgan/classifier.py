"""Kept so that `python -m colorgan.classifier`, as earlier versions documented it, still works: the code is
colorgan/evaluation/classifier.py (`python -m colorgan.evaluation.classifier`)."""
import runpy

if __name__ == "__main__":
    runpy.run_module("colorgan.evaluation.classifier", run_name="__main__", alter_sys=True)
