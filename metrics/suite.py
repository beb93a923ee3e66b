"""The metric suite: sample in memory, extract features once per extractor, compute metrics.

The math is torch-fidelity's (``fid_features_to_statistics`` / ``fid_statistics_to_metric``,
``kid_features_to_metric``, ``prc_features_to_metric``, ``isc_features_to_metric``): this
module decides what goes in (G_ema in eval mode, a fixed metric seed independent of training,
the reference split), shares one feature pass between all metrics of an extractor, caches the
reference features under a key of everything that changes them, and stamps every result with
its protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from metrics.common import package_versions, save_atomic
from metrics.evaluator import FEATURE_DIM, entropy_bits
from metrics.extractors import FMNIST_EXTRACTOR, FMNISTEvaluatorExtractor
from models.registry import Variant


class MetricInputError(ValueError):
    """Inputs that cannot give a meaningful metric (too few samples, wrong shape or range)."""


@dataclass(frozen=True)
class EvalSettings:
    """How the metrics are computed; recorded with every result."""

    num_samples: int  # generated samples scored
    metric_seed: int = 2020  # latents/labels and metric subsampling; independent of training
    batch_size: int = 500  # feature-extraction batch; results do not depend on it
    isc_splits: int = 10  # the Inception Score convention
    kid_subsets: int = 100  # torch-fidelity's defaults
    kid_subset_size: int = 1000  # lowered to the sample count when that is smaller (recorded)
    prc_neighborhood: int = 3  # k of the k-NN manifolds (Kynkaanniemi et al. 2019)
    inception_samples: int = 0  # generated and reference images for the Inception metrics; 0 off
    inception_batch_size: int = 64  # Inception at 299x299 is memory-hungry
    ppl_samples: int = 0  # latent pairs for the perceptual path length; 0 skips smoothness


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


def to_uint8(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Map model outputs in [lo, hi] to uint8 0..255 (rounded, clipped), as a PNG would."""
    return ((x - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def check_images(images: torch.Tensor, what: str) -> None:
    """uint8 (N, C, H, W) with C in {1, 3}; anything else is a clear MetricInputError."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise MetricInputError(
            f"{what}: expected a uint8 tensor of images, got {_describe(images)}"
        )
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise MetricInputError(f"{what}: expected shape (N, 1|3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise MetricInputError(f"{what}: no images")


def _describe(x: Any) -> str:
    return f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


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


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for an empty one)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


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


def fid(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """FID between two feature sets (torch-fidelity's statistics and formula)."""
    s1, s2 = fid_features_to_statistics(f1), fid_features_to_statistics(f2)
    return float(fid_statistics_to_metric(s1, s2, False)["frechet_inception_distance"])


def distribution_metrics(
    gen: torch.Tensor, ref: torch.Tensor, settings: EvalSettings, suffix: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """FID, KID and precision/recall between generated and reference features."""
    n1, n2, dim = len(gen), len(ref), gen.shape[1]
    if min(n1, n2) < 2:
        raise MetricInputError(f"FID needs at least 2 samples per side, got {n1} and {n2}")
    kid_size = min(settings.kid_subset_size, n1, n2)
    out = {
        f"fid_{suffix}": fid(gen, ref),
    }
    kid = kid_features_to_metric(
        gen,
        ref,
        kid_subsets=settings.kid_subsets,
        kid_subset_size=kid_size,
        rng_seed=settings.metric_seed,
        verbose=False,
    )
    out[f"kid_{suffix}"] = float(kid["kernel_inception_distance_mean"])
    out[f"kid_{suffix}_std"] = float(kid["kernel_inception_distance_std"])
    prc = prc_features_to_metric(
        gen,
        ref,
        prc_neighborhood=settings.prc_neighborhood,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    out[f"precision_{suffix}"] = float(prc["precision"])
    out[f"recall_{suffix}"] = float(prc["recall"])
    notes = {"kid_subset_size": kid_size, "fid_rank_deficient": min(n1, n2) <= dim}
    return out, notes


def inception_score(logits: torch.Tensor, settings: EvalSettings) -> tuple[float, float]:
    """IS mean and std over ``isc_splits`` splits (torch-fidelity's computation)."""
    if len(logits) < settings.isc_splits:
        raise MetricInputError(
            f"Inception Score with {settings.isc_splits} splits needs at least that many "
            f"samples, got {len(logits)}"
        )
    r = isc_features_to_metric(logits, settings.isc_splits, True, settings.metric_seed)
    return float(r["inception_score_mean"]), float(r["inception_score_std"])


def fmnist_metrics(
    extractor: FMNISTEvaluatorExtractor,
    gen_images: torch.Tensor,
    gen_labels: torch.Tensor | None,
    ref_feats: dict[str, torch.Tensor],
    ref_labels: torch.Tensor,
    class_ids: tuple[int, ...],
    settings: EvalSettings,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Every evaluator metric from one feature pass over ``gen_images``."""
    check_images(gen_images, "generated images")
    feats = extract(extractor, gen_images, settings.batch_size)
    logits, gen_f = feats["logits"], feats["features"]
    out: dict[str, float | None] = {}
    out["is_fmnist"], out["is_fmnist_std"] = inception_score(logits, settings)
    dist, notes = distribution_metrics(gen_f, ref_feats["features"], settings, "fmnist")
    out.update(dist)
    pred = logits.argmax(1)
    hist = torch.bincount(pred, minlength=10).double()
    share = hist / hist.sum()
    expected = 1.0 / len(class_ids)
    out["class_coverage"] = sum(float(share[c]) >= 0.5 * expected for c in class_ids) / len(
        class_ids
    )
    out["class_entropy"] = entropy_bits(share)
    notes["class_histogram"] = [int(h) for h in hist.tolist()]
    if gen_labels is not None:
        out["label_accuracy"] = float((pred == gen_labels).double().mean())
        per_class: dict[int, float] = {}
        for c in class_ids:
            g, r = gen_f[gen_labels == c], ref_feats["features"][ref_labels == c]
            if min(len(g), len(r)) > FEATURE_DIM:  # fewer would leave the covariance singular
                per_class[c] = fid(g, r)
        notes["fid_fmnist_per_class"] = {str(c): v for c, v in per_class.items()}
        out["intra_fid_fmnist"] = (
            sum(per_class.values()) / len(per_class) if len(per_class) == len(class_ids) else None
        )
        if out["intra_fid_fmnist"] is None:
            notes["intra_fid_fmnist"] = f"needs > {FEATURE_DIM} samples per class"
    return out, notes


def inception_metrics(
    extractor: FeatureExtractorInceptionV3,
    gen_images: torch.Tensor,
    ref_feats: dict[str, torch.Tensor],
    settings: EvalSettings,
) -> tuple[dict[str, float], dict[str, Any]]:
    """FID, KID, precision/recall on pool3 and, when the extractor has logits, the IS.

    One feature pass: torch-fidelity's TF1-compatible bilinear upscaling to 299x299 happens
    inside the extractor; gray images are replicated to RGB.
    """
    check_images(gen_images, "generated images")
    feats = extract(extractor, gen_images, settings.inception_batch_size)
    out, notes = distribution_metrics(feats["2048"], ref_feats["2048"], settings, "inception")
    if "logits_unbiased" in feats:
        out["is_inception"], out["is_inception_std"] = inception_score(
            feats["logits_unbiased"], settings
        )
    return out, notes


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
