"""Reference statistics as portable files: `bench reference export` and `--reference-stats`.

A file holds one extractor's reference features (with FID's mean and covariance, in
torch-fidelity's layout) and the protocol that produced them: extractor, weights sha256,
dataset, split, classes, size, images hash, versions. Importing one skips reading the data
and extracting its features; it is refused unless its extractor and weights hash equal the
ones in use, so imported and computed numbers are never mixed silently.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics

from bench.data import IMAGE_SIZE
from bench.errors import BenchError
from metrics.common import write_atomic
from metrics.suite import versions

FORMAT = "fmgan-bench-reference/1"
KINDS = ("fmnist", "inception")
_FEATURE = {"fmnist": "features", "inception": "2048"}


class ReferenceFileError(BenchError):
    """A reference file that cannot be read or does not fit the extractor in use."""


@dataclass(frozen=True)
class ImportedReference:
    """Reference features read from a file, with their protocol."""

    kind: str  # "fmnist" or "inception"
    path: Path
    protocol: dict[str, Any]
    features: dict[str, torch.Tensor]
    labels: torch.Tensor | None

    @property
    def classes(self) -> tuple[int, ...] | None:
        """The class subset the reference covers (None: all ten)."""
        c = self.protocol["reference"]["classes"]
        return None if c == "all" else tuple(c)

    def description(self) -> dict[str, Any]:
        """The reference description for result protocols, naming the file."""
        return {**self.protocol["reference"], "imported_from": str(self.path)}


def export_reference(
    kind: str,
    extractor_name: str,
    weights_sha256: str,
    features: torch.Tensor,
    labels: torch.Tensor | None,
    reference: dict[str, Any],
    path: Path,
) -> dict[str, Any]:
    """Write ``features`` with FID statistics and the protocol to ``path`` (.npz, atomic)."""
    stats = fid_features_to_statistics(features)
    protocol = {
        "format": FORMAT,
        "kind": kind,
        "extractor": extractor_name,
        "weights_sha256": weights_sha256,
        "feature": _FEATURE[kind],
        "reference": reference,
        "versions": versions(),
    }
    buf = io.BytesIO()
    np.savez(
        buf,
        mu=np.asarray(stats["mu"]),
        sigma=np.asarray(stats["sigma"]),
        features=features.numpy().astype(np.float32),
        labels=(labels.numpy() if labels is not None else np.zeros(0, np.int64)),
        protocol=np.array(json.dumps(protocol, sort_keys=True)),
    )
    write_atomic(buf.getvalue(), path)
    return protocol


def load_reference(path: Path) -> ImportedReference:
    """Read a file written by :func:`export_reference`.

    Raises:
        ReferenceFileError: unreadable, not this format, or inconsistent.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            protocol = json.loads(str(z["protocol"]))
            feats = torch.from_numpy(z["features"].astype(np.float32))
            labels = torch.from_numpy(z["labels"]) if z["labels"].size else None
    except (OSError, KeyError, ValueError) as exc:
        raise ReferenceFileError(
            f"{path}: not a reference file of `bench reference export` ({exc})"
        ) from None
    if not isinstance(protocol, dict):
        raise ReferenceFileError(f"{path}: its protocol is not a JSON object")
    if protocol.get("format") != FORMAT or protocol.get("kind") not in KINDS:
        raise ReferenceFileError(f"{path}: format {protocol.get('format')!r}, expected {FORMAT}")
    missing = [k for k in ("extractor", "weights_sha256", "reference") if k not in protocol]
    ref = protocol.get("reference")
    if not missing and not (isinstance(ref, dict) and "classes" in ref):
        missing = ["reference.classes"]
    if missing or not all(isinstance(protocol[k], str) for k in ("extractor", "weights_sha256")):
        raise ReferenceFileError(
            f"{path}: its protocol lacks {', '.join(missing) or 'extractor/weights as text'} "
            "(damaged, or not written by `bench reference export`); export it again"
        )
    if feats.ndim != 2 or len(feats) < 2:
        raise ReferenceFileError(f"{path}: features of shape {tuple(feats.shape)}")
    kind = protocol["kind"]
    return ImportedReference(kind, path, protocol, {_FEATURE[kind]: feats}, labels)


def check_matches(ref: ImportedReference, extractor_name: str, weights_sha256: str) -> None:
    """Refuse a reference made with another extractor or other weights."""
    p = ref.protocol
    if p["extractor"] != extractor_name or p["weights_sha256"] != weights_sha256:
        raise ReferenceFileError(
            f"{ref.path} was made with {p['extractor']} (weights {p['weights_sha256'][:12]}), "
            f"but scoring uses {extractor_name} (weights {weights_sha256[:12]}); its numbers "
            "would not be comparable. Export it again with the extractor in use."
        )


def describe_split(
    images: torch.Tensor,
    classes: tuple[int, ...] | None,
    split: str,
    resolution: int = IMAGE_SIZE,
    **extra: str,
) -> dict[str, Any]:
    """A description of reference images, recorded in protocols and cache keys. At another
    ``resolution`` than 28 it says so: real and generated images take the same path (as
    clean-fid asks), so a generator trained on upscaled images (``dcgan-64``) is scored
    against real images upscaled as its training data was, then the extractor resizes both
    alike (against the 28x28 test images its own training images scored FID(fmnist) 76.6, a
    blur penalty). Unchanged at 28x28, so those references and their caches stay valid."""
    if resolution != IMAGE_SIZE:
        extra["resolution"] = f"{resolution}x{resolution}: bilinear upscale to uint8, as trained"
    return {
        "dataset": "fashion-mnist",
        "split": split,
        "classes": list(classes) if classes is not None else "all",
        "size": len(images),
        **extra,
        "images_sha256": hashlib.sha256(images.numpy().tobytes()).hexdigest(),
    }
