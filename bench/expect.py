"""`bench score TARGET --expect FILE`: a metric-pipeline gate. A fixed input scored now must
reproduce the values a committed ``bench score --json`` output holds, so that a change to data
loading, preprocessing, an extractor or a metric's math fails CI even when training is fine.

The rule, per metric of the expected file: ``|now - expected| <= rtol * |expected| + atol``,
where ``atol`` is 1e-9, plus one sample's share (1 / the family's sample count) for the metrics
that count samples (precision, recall, density, coverage, class coverage, label accuracy):
another CPU rounds features differently in the last bits, which may flip one sample's
nearest-neighbour decision but moves FID, KID and IS by far less than ``rtol``. The protocol
must match exactly: extractor, weights hash, sample counts, metric seed and the reference
images' hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.validate import is_number

DEFAULT_RTOL = 1e-3
COUNTING = ("precision_", "recall_", "density_", "coverage_", "class_coverage", "label_accuracy")
PROTOCOL_FIELDS = ("extractor", "weights_sha256", "num_samples", "metric_seed")
REFERENCE_FIELDS = ("split", "size", "classes", "images_sha256")


def read_expected(path: Path) -> dict[str, Any]:
    """A ``bench score --json`` output to hold a score to.

    Raises:
        BenchError: unreadable, not JSON, or without ``metrics`` and ``protocol`` objects.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"--expect {path}: cannot read it as JSON ({exc})") from None
    if not (isinstance(data, dict) and isinstance(data.get("metrics"), dict)
            and isinstance(data.get("protocol"), dict)):  # fmt: skip
        raise BenchError(f"--expect {path}: not a `bench score --json` output (no metrics and "
                         "protocol objects)")  # fmt: skip
    return data


def _family(key: str) -> str:
    return "inception" if key.endswith("_inception") else "fmnist"


def mismatches(
    row: dict[str, Any], expected: dict[str, Any], rtol: float = DEFAULT_RTOL
) -> list[str]:
    """Every way ``row`` (a score) differs from ``expected`` beyond the tolerance, as lines."""
    out = []
    for family, want in expected["protocol"].items():
        have = row.get("protocol", {}).get(family)
        if not isinstance(want, dict) or family == "smoothness":
            continue
        if not isinstance(have, dict):
            out.append(f"protocol {family}: expected, not computed now")
            continue
        pairs = [(f, want.get(f), have.get(f)) for f in PROTOCOL_FIELDS]
        ref_w, ref_h = want.get("reference") or {}, have.get("reference") or {}
        pairs += [(f"reference.{f}", ref_w.get(f), ref_h.get(f)) for f in REFERENCE_FIELDS]
        out += [f"protocol {family}.{f}: expected {w!r}, now {h!r}"
                for f, w, h in pairs if w is not None and w != h]  # fmt: skip
    for key, want in sorted(expected["metrics"].items()):
        if not is_number(want):
            continue
        now = row.get("metrics", {}).get(key)
        if not is_number(now):
            out.append(f"{key}: expected {want:.6g}, now {now!r}")
            continue
        atol = 1e-9
        if key.startswith(COUNTING):
            n = (expected["protocol"].get(_family(key)) or {}).get("num_samples")
            atol += 1.0 / n if is_number(n) and n > 0 else 0.0
        if abs(now - want) > rtol * abs(want) + atol:
            rel = (now - want) / abs(want) if want else now - want
            out.append(f"{key}: expected {want:.6g}, now {now:.6g} ({rel:+.2e} relative)")
    return out
