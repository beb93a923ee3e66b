"""The metric suite: sample in memory, extract features once per extractor, run the metric
families of the registry (:mod:`metrics.keys`) on that pass.

The math is in the family modules (torch-fidelity's where it has it); this module decides
what goes in (G_ema in eval mode, a fixed metric seed independent of training, the reference
split), shares one feature pass between all families of an extractor, caches the reference
features under a key of everything that changes them, and stamps every result with its
protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from metrics.common import package_versions, save_atomic
from metrics.extractors import FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor
from metrics.family import EvalSettings, FeatureContext
from metrics.images import check_images, module_device, to_uint8
from metrics.keys import families
from models.registry import Variant


def versions() -> dict[str, str]:
    """Versions that change metric values."""
    return package_versions(("torch", "torch-fidelity"))


@torch.no_grad()
def generate(
    G: nn.Module,
    variant: Variant,
    n: int,
    seed: int,
    device: str | torch.device = "cpu",
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` uint8 images (N, 1, R, R) from ``G`` in eval mode, and their labels if conditional.

    Latents (and labels) come from ``variant.sample_latents`` with a generator seeded by
    ``seed``, so the same (checkpoint, seed) always gives the same images.
    """
    was_training = G.training
    G.eval()
    g = torch.Generator(device).manual_seed(seed)
    lo, hi = variant.data.value_range
    images, labels = [], []
    try:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z, y = variant.sample_latents(b, g, device)
            x = G(z) if y is None else G(z, y)
            images.append(to_uint8(x.float(), lo, hi).cpu())
            if y is not None:
                labels.append(y.cpu())
    finally:
        G.train(was_training)
    return torch.cat(images), (torch.cat(labels) if labels else None)


@torch.no_grad()
def extract(
    extractor: nn.Module, images: torch.Tensor, batch_size: int = 500
) -> dict[str, torch.Tensor]:
    """Run ``extractor`` (a torch-fidelity FeatureExtractorBase) over uint8 ``images``.

    Gray images are replicated to RGB for extractors that take RGB only (Inception), as
    torch-fidelity's own dataset wrappers do.
    """
    names = extractor.get_requested_features_list()
    rgb = isinstance(extractor, FeatureExtractorInceptionV3)
    device = module_device(extractor)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with full_fp32():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size].to(device, non_blocking=True)
            if rgb and batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            feats = extractor(batch)
            for name, f in zip(names, feats, strict=True):
                out[name].append(f.cpu())
    return {n: torch.cat(v) for n, v in out.items()}


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """TF32 off for the block: on Ampere and later GPUs cuDNN convolutions default to TF32's
    10-bit mantissa, which would make GPU features differ from the CPU's protocol at the
    third digit. Features are a protocol; their cost on a GPU is small either way."""
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def reference_features(
    extractor: nn.Module,
    images: torch.Tensor,
    key: dict[str, Any],
    cache_dir: Path | None,
    batch_size: int = 500,
) -> dict[str, torch.Tensor]:
    """Features of the reference images, cached on disk under a hash of ``key`` plus the
    extractor, its weights hash (``extractor.weights_sha256``) and the versions (written
    atomically)."""
    full_key = {
        **key,
        "extractor": extractor.get_name(),
        "weights_sha256": extractor.weights_sha256,
        "n": len(images),
        **versions(),
    }
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir / "reference" / f"{extractor.get_name()}-{digest}.pt" if cache_dir else None
    if path is not None and path.is_file():
        try:
            return torch.load(path, weights_only=True)["features"]
        except Exception:
            path.unlink(missing_ok=True)
    feats = extract(extractor, images, batch_size)
    if path is not None:
        save_atomic({"key": full_key, "features": feats}, path)
    return feats


def feature_metrics(ctx: FeatureContext) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every registered feature family that applies to ``ctx``'s pass, in registry order:
    their values and their notes (for the pass's protocol section)."""
    values: dict[str, float | None] = {}
    notes: dict[str, Any] = {}
    for family in families("features"):
        if not family.runs_on(ctx):
            continue
        v, n = family.compute(ctx)
        stray = set(v) - {k.name for k in family.keys}
        if stray:
            raise ValueError(f"metric family {family.name!r} returned unregistered {stray}")
        values.update(v)
        notes.update(n)
    return values, notes


def fmnist_metrics(
    extractor: FMNISTEvaluatorExtractor,
    gen_images: torch.Tensor,
    gen_labels: torch.Tensor | None,
    ref_feats: dict[str, torch.Tensor],
    ref_labels: torch.Tensor,
    class_ids: tuple[int, ...],
    settings: EvalSettings,
    copying: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every evaluator metric from one feature pass over ``gen_images``; ``copying``: the
    training and held-out features of the data-copying test (None: that test is skipped)."""
    check_images(gen_images, "generated images")
    gen = extract(extractor, gen_images, settings.batch_size)
    train, held = copying if copying is not None else (None, None)
    ctx = FeatureContext(
        "fmnist", gen, ref_feats, settings, gen_labels, ref_labels, tuple(class_ids),
        train=train, held_out=held,
    )  # fmt: skip
    return feature_metrics(ctx)


def inception_metrics(
    extractor: FeatureExtractorInceptionV3,
    gen_images: torch.Tensor,
    ref_feats: dict[str, torch.Tensor],
    settings: EvalSettings,
    copying: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every Inception metric from one pool3 (+ logits, when the network has them) pass;
    ``copying`` as for :func:`fmnist_metrics`.

    torch-fidelity's TF1-compatible bilinear upscaling to 299x299 happens inside the
    extractor; gray images are replicated to RGB.
    """
    check_images(gen_images, "generated images")
    feats = extract(extractor, gen_images, settings.inception_batch_size)
    train, held = (_inception_names(c) for c in copying) if copying is not None else (None, None)
    ctx = FeatureContext("inception", _inception_names(feats), _inception_names(ref_feats),
                         settings, train=train, held_out=held)  # fmt: skip
    return feature_metrics(ctx)


def _inception_names(feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch-fidelity's Inception feature names as the families read them."""
    out = {"features": feats["2048"]}
    if "logits_unbiased" in feats:
        out["logits"] = feats["logits_unbiased"]
    return out


INCEPTION_RESIZE = "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299; gray->RGB"
FMNIST_RESIZE = "bilinear, antialiased, to 28x28 (none at 28x28); RGB averaged to gray"


def protocol(
    extractor: nn.Module,
    settings: EvalSettings,
    reference: dict[str, Any],
    notes: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to compare (or refuse to compare) two results."""
    inception = isinstance(extractor, FeatureExtractorInceptionV3)
    return {
        "extractor": extractor.get_name() if inception else FMNIST_EXTRACTOR,
        "weights_sha256": extractor.weights_sha256,
        "resize": INCEPTION_RESIZE if inception else FMNIST_RESIZE,
        "reference": reference,
        **asdict(settings),
        **notes,
        "versions": versions(),
    }
