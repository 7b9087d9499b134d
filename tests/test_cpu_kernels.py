"""oneDNN on x86 CPUs, chosen by colorgan before TensorFlow is imported, unless the user chose (issue 32)."""
import json
import subprocess
import sys

import pytest

from colorgan import cpu_kernels
from colorgan.config import Config
from conftest import ROOT


@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_on_x86_it_turns_onednn_on(machine):
    env = {}
    said = cpu_kernels.choose(env, machine, tensorflow_imported=False)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "1"} and said.startswith("oneDNN on")


@pytest.mark.parametrize("value, state", [("0", "off"), ("false", "off"), ("1", "on"), ("True", "on")])
def test_the_users_setting_is_kept_and_said(value, state):
    env = {"TF_ENABLE_ONEDNN_OPTS": value}
    said = cpu_kernels.choose(env, "x86_64", tensorflow_imported=False)
    assert env == {"TF_ENABLE_ONEDNN_OPTS": value}
    assert said.startswith(f"oneDNN {state}") and value in said


def test_elsewhere_or_too_late_it_leaves_tensorflow_alone():
    env = {}
    assert "not an x86 CPU: aarch64" in cpu_kernels.choose(env, "aarch64", tensorflow_imported=False)
    assert "imported before colorgan" in cpu_kernels.choose(env, "x86_64", tensorflow_imported=True)
    assert env == {}


def _child(code: str, **env) -> str:
    import os
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"} | env
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_import_of_colorgan_sets_it_before_tensorflow_reads_it():
    """A fresh process: importing any colorgan module (as scripts and `python -m` do) sets the variable, and
    TensorFlow imported afterwards sees it; a user's 0 survives."""
    import platform
    if platform.machine().lower() not in cpu_kernels.X86:
        pytest.skip("oneDNN is chosen on x86 CPUs only")
    code = "import os, colorgan.errors; import tensorflow; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    assert _child(code) == "1"
    assert _child(code, TF_ENABLE_ONEDNN_OPTS="0") == "0"


def test_config_json_records_the_kernels_and_still_loads(tmp_path):
    path = tmp_path / "config.json"
    Config().save(path)
    saved = json.loads(path.read_text())
    assert saved["cpu_kernels"] == cpu_kernels.choice()
    assert Config.load(path) == Config()


@pytest.mark.parametrize("flags, kind", [("fpu avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile", "AMX"),
                                         ("avx avx2 avx512f avx512bw avx512_bf16", "AVX-512"),
                                         ("sse4_2 avx avx2 fma", "AVX2"), ("sse4_2 avx", "no AVX2")])
def test_cpu_kind_names_the_fastest_vector_units(flags, kind):
    assert cpu_kernels.cpu_kind(f"processor : 0\nflags : {flags}\n", environ={}) == kind


def test_cpu_kind_says_when_onednn_is_held_to_avx2():
    said = cpu_kernels.cpu_kind("flags : avx avx2 avx512f", environ={"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert said.startswith("AVX-512") and "held to AVX2" in said
