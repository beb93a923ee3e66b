"""Package versions and git commit, recorded in every config and checkpoint."""

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
