"""Package versions, git commit and the CPU's native number formats, recorded in every config
and checkpoint or printed by the benchmarks."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from metrics.common import package_versions

_PACKAGES = ("torch", "torchvision", "torch-fidelity", "numpy", "scipy", "pandas", "fmgan-bench")


def versions() -> dict[str, str]:
    """Installed versions of the packages that change results, plus Python and platform."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        **package_versions(_PACKAGES),
    }


def git_commit() -> str | None:
    """The source tree's commit (with '+dirty' when modified), or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute in bfloat16 natively


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_bf16(cpuinfo: str | None = None) -> tuple[str, ...]:
    """The CPU's native bfloat16 instruction sets (from /proc/cpuinfo's flags), empty when it
    has none or the file cannot be read: without them bf16 autocast is emulated and slower
    than fp32, so it pays only where this is non-empty."""
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return tuple(f for f in BF16_FLAGS if f in flags)


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (/proc/cpuinfo's first ``model name``; else the platform's
    processor string; else ``unknown``). CPU rows depend on the machine's kernels, so every
    row names the CPU it ran on."""
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def cpu_description(cpuinfo: str | None = None) -> dict[str, object]:
    """What a row records of its CPU: model name and native bf16 instruction sets."""
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    return {"model": cpu_model(cpuinfo), "bf16": list(cpu_bf16(cpuinfo))}
