"""Kept so that `python -m colorgan.prepare`, as earlier versions documented it, still works: the code is
colorgan/data/prepare.py (`python -m colorgan.data.prepare`)."""
import runpy

if __name__ == "__main__":
    runpy.run_module("colorgan.data.prepare", run_name="__main__", alter_sys=True)
