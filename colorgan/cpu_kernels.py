"""Which CPU kernels TensorFlow uses, chosen before TensorFlow is imported: oneDNN on x86 CPUs.

TensorFlow 2.21 turns its oneDNN kernels on by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX. On
AVX2-only CPUs (the AMD EPYC machines this project also runs on) they stay off, though with them on the same
train steps measured 2.1x faster for pix2pix at 32 px and +14% for the shipped recipe (issue 32; docs/speed.md).
So colorgan sets TF_ENABLE_ONEDNN_OPTS=1 on every x86 CPU unless the user has set it, which changes nothing
where TensorFlow would turn them on anyway. `import colorgan` does this, so every entry point (the scripts,
the `colorgan` command, `python -m colorgan...`, the server, `from colorgan import ...`) gets it, as long as
TensorFlow was not imported first. No TensorFlow import here: this must run before it.
"""
from __future__ import annotations

import os
import platform
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"
X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_OFF = ("0", "false", "f", "no", "off")

_choice: str | None = None


def choose(environ=None, machine: str | None = None, tensorflow_imported: bool | None = None) -> str:
    """Set TF_ENABLE_ONEDNN_OPTS=1 on x86 CPUs if the user has not set it; return what was chosen and why, in
    words (logged and recorded in config.json). The arguments are for tests; by default the process's own."""
    environ = os.environ if environ is None else environ
    machine = (platform.machine() if machine is None else machine).lower()
    if tensorflow_imported is None:
        tensorflow_imported = "tensorflow" in sys.modules
    if ENV in environ:
        state = "off" if environ[ENV].strip().lower() in _OFF else "on"
        return f"oneDNN {state} ({ENV}={environ[ENV]}, set before colorgan started)"
    if tensorflow_imported:
        return "TensorFlow's default (TensorFlow was imported before colorgan)"
    if machine not in X86:
        return f"TensorFlow's default (not an x86 CPU: {machine or 'unknown'})"
    environ[ENV] = "1"
    return "oneDNN on (colorgan's default on x86 CPUs)"


# The vector units that set a CPU's speed here, fastest first: /proc/cpuinfo's flag for each. The speed
# figures differ by kind (docs/speed.md), so benchmarks print which kind they ran on.
CPU_KINDS = (("AMX", "amx_bf16"), ("AVX-512", "avx512f"), ("AVX2", "avx2"))


def cpu_kind(cpuinfo: str | None = None, environ=None) -> str:
    """The CPU's fastest vector units (AMX, AVX-512, AVX2, or "no AVX2"), and the cap oneDNN is held to by
    ONEDNN_MAX_CPU_ISA if one is set (how an AVX2-only CPU is emulated on a bigger one). Linux's /proc/cpuinfo;
    "unknown" without it. The arguments are for tests; by default the machine's own."""
    environ = os.environ if environ is None else environ
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return "unknown"
    flags = set(cpuinfo.split())
    kind = next((name for name, flag in CPU_KINDS if flag in flags), "no AVX2")
    cap = environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{kind}, oneDNN held to {cap} (ONEDNN_MAX_CPU_ISA)" if cap else kind


def choice() -> str:
    """What this process chose, the first time colorgan was imported."""
    global _choice
    if _choice is None:
        _choice = choose()
    return _choice
