"""Interpolation smoothness: perceptual path length and discontinuities along latent paths.

``ppl`` is torch-fidelity's perceptual path length (Karras et al. 2019): epsilon 1e-4, the
1st/99th percentile filter, its latent sampling and interpolation, with a sample similarity
that works offline: the squared distance between the Fashion-MNIST evaluator's features,
registered with torch-fidelity as ``fmnist-evaluator-l2``. LPIPS-VGG16 (torch-fidelity's
default similarity) is used in addition where its weights can be had.

``interp_discontinuity`` walks K latent paths of T steps (slerp between two Gaussian latents,
the label fixed for conditional models) and reports the mean over paths of max step / mean
step in evaluator feature space: 1 for a perfectly even path, large when the image jumps
somewhere on the path. The number of evaluator class changes along each path and a PNG strip
per variant (seed 000's latent interpolation figure) come from the same pass.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_fidelity.generative_model_modulewrapper import GenerativeModelModuleWrapper
from torch_fidelity.metric_ppl import KEY_METRIC_PPL_RAW, calculate_ppl
from torch_fidelity.registry import SAMPLE_SIMILARITY_REGISTRY, register_sample_similarity
from torch_fidelity.sample_similarity_base import SampleSimilarityBase

from metrics.evaluator import load_evaluator
from metrics.images import module_device, to_signed_unit, to_uint8
from models.registry import Variant

EVALUATOR_SIMILARITY = "fmnist-evaluator-l2"
LPIPS_SIMILARITY = "lpips-vgg16"


@dataclass(frozen=True)
class InterpSettings:
    """How smoothness is measured; recorded with every result."""

    ppl_samples: int = 2000  # latent pairs (StyleGAN uses 100k on GPUs)
    ppl_epsilon: float = 1e-4  # torch-fidelity's and StyleGAN's
    ppl_interp: str = "lerp"  # torch-fidelity's default latent interpolation
    ppl_percentiles: tuple[float, float] = (1.0, 99.0)  # discard outside, as torch-fidelity
    paths: int = 8  # K latent paths for interp_discontinuity and the strip
    steps: int = 10  # T images per path
    seed: int = 2020
    batch_size: int = 250


class EvaluatorSimilarity(SampleSimilarityBase):
    """Squared L2 distance between the evaluator's penultimate features of two image batches
    (uint8, or float in [-1, 1]).

    Quadratic like LPIPS, so that distance / epsilon^2 converges as epsilon -> 0.
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name)
        self.model, self.weights_sha256 = load_evaluator(None)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-pair squared feature distance, shape (N,)."""
        _, fa = self.model(a)
        _, fb = self.model(b)
        return (fa.float() - fb.float()).pow(2).sum(dim=1)


if EVALUATOR_SIMILARITY not in SAMPLE_SIMILARITY_REGISTRY:
    register_sample_similarity(EVALUATOR_SIMILARITY, EvaluatorSimilarity)


class _WrappedGenerator(nn.Module):
    """G as torch-fidelity calls a generator: latents (and label indices) -> images.

    ``uint8`` gives torch-fidelity's default images (for LPIPS). Otherwise the output is
    float in [-1, 1] without rounding: at epsilon 1e-4 two images differ by far less than one
    grey level, so uint8 rounding would replace the path length by quantisation noise
    (measured: std 5x the mean on an untrained dcgan). torch-fidelity draws labels 0..K-1;
    they index the variant's classes, so a two-class variant gets its own class ids.
    """

    def __init__(self, G: nn.Module, variant: Variant, uint8: bool) -> None:
        super().__init__()
        self.G, self.variant, self.uint8 = G, variant, uint8
        self.register_buffer("class_ids", torch.tensor(variant.data.class_ids))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.float()
        x = self.G(z) if labels is None else self.G(z, self.class_ids[labels.long()])
        lo, hi = self.variant.data.value_range
        if self.uint8:
            return to_uint8(x.float(), lo, hi)
        return to_signed_unit(x, lo, hi)


@contextlib.contextmanager
def _weights_only_lpips() -> Iterator[None]:
    """torch-fidelity's LPIPS loads its weights from torch hub's cache with torch's default
    ``weights_only=False``, so a poisoned cache file would run code; inside this block the
    name it calls loads weights only (a file holding anything else is refused)."""
    import torch_fidelity.sample_similarity_lpips as lpips

    original = lpips.load_state_dict_from_url
    lpips.load_state_dict_from_url = functools.partial(original, weights_only=True)
    try:
        yield
    finally:
        lpips.load_state_dict_from_url = original


def ppl(
    G: nn.Module,
    variant: Variant,
    settings: InterpSettings,
    similarity: str = EVALUATOR_SIMILARITY,
    device: str = "cpu",
) -> dict[str, float]:
    """Perceptual path length of ``G`` through torch-fidelity, with ``similarity``.

    torch-fidelity 0.4.0's own percentile filter calls ``np.percentile(interpolation=)``,
    which NumPy 2.4 removed; so the raw distances are requested and the same filter
    (lower/higher percentile, inclusive) is applied here.
    """
    was_training = G.training
    G.eval()
    n_classes = len(variant.data.class_ids) if variant.conditional else 0
    module = _WrappedGenerator(G, variant, uint8=similarity != EVALUATOR_SIMILARITY)
    wrapped = GenerativeModelModuleWrapper(module, variant.z_dim, "normal", n_classes)
    try:
        with _weights_only_lpips():
            out = calculate_ppl(
                1,
                input1=wrapped,
                input1_model_num_classes=n_classes,  # PPL reads conditioning from the kwargs
                input1_model_z_size=variant.z_dim,
                input1_model_z_type="normal",
                input1_model_num_samples=settings.ppl_samples,
                ppl_epsilon=settings.ppl_epsilon,
                ppl_z_interp_mode=settings.ppl_interp,
                ppl_sample_similarity=similarity,
                ppl_reduction="none",
                ppl_discard_percentile_lower=None,
                ppl_discard_percentile_higher=None,
                batch_size=settings.batch_size,
                rng_seed=settings.seed,
                cuda=str(device).startswith("cuda"),
                verbose=False,
            )
    finally:
        G.train(was_training)
    d = np.asarray(out[KEY_METRIC_PPL_RAW], dtype=np.float64)
    lo_p, hi_p = settings.ppl_percentiles
    lo = np.percentile(d, lo_p, method="lower")
    hi = np.percentile(d, hi_p, method="higher")
    kept = d[(lo <= d) & (d <= hi)]
    return {"mean": float(kept.mean()), "std": float(kept.std()), "kept": int(kept.size)}


def slerp_rows(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of each row of ``a`` towards the same row of ``b`` at its own
    fraction ``t`` (N,)."""
    return _slerp(a, b, t[:, None])


@torch.no_grad()
def karras_ppl(
    G: nn.Module,
    variant: Variant,
    settings: InterpSettings,
    features: Callable[[torch.Tensor], torch.Tensor],
    device: str = "cpu",
) -> dict[str, float | int | None]:
    """Karras et al.'s Z-space path length and the same relative to the path's endpoints.

    For each of ``ppl_samples`` pairs: z0, z1 ~ N(0, I) (labels as the variant samples them),
    t ~ U[0, 1], d_t = |f(G(slerp(z0, z1, t))) - f(G(slerp(z0, z1, t + eps)))|^2 / eps^2
    and the endpoint distance e = |f(G(z0)) - f(G(z1))|^2, with ``f`` the evaluator's
    features of images scaled to [-1, 1] (not rounded). Pairs outside the 1st/99th
    percentiles of d_t are dropped, as Karras et al. do. ``ppl_karras`` is the mean d_t;
    ``ppl_relative`` is mean d_t / mean e over the kept pairs: both scale quadratically with
    the image distances, so the ratio does not reward a generator for moving little, and by
    Cauchy-Schwarz it is 1 for a generator whose path runs through feature space at constant
    speed, more for uneven ones. A generator whose endpoints coincide (a constant one) has no
    relative path length: ``None``, with ``degenerate`` set.
    """
    was_training = G.training
    G.eval()
    g = torch.Generator().manual_seed(settings.seed)
    lo, hi = variant.data.value_range
    d_t, ends = [], []
    try:
        for start in range(0, settings.ppl_samples, settings.batch_size):
            b = min(settings.batch_size, settings.ppl_samples - start)
            z0, y = variant.sample_latents(b, g)
            z1, _ = variant.sample_latents(b, g)
            t = torch.rand(b, generator=g) * (1 - settings.ppl_epsilon)
            z = torch.cat([slerp_rows(z0, z1, t), slerp_rows(z0, z1, t + settings.ppl_epsilon),
                           z0, z1]).to(device)  # fmt: skip
            x = G(z) if y is None else G(z, y.repeat(4).to(device))
            f = features(to_signed_unit(x, lo, hi)).double().cpu()
            fa, fb, f0, f1 = f.chunk(4)
            d_t.append((fa - fb).pow(2).sum(1) / settings.ppl_epsilon**2)
            ends.append((f0 - f1).pow(2).sum(1))
    finally:
        G.train(was_training)
    d, e = torch.cat(d_t).numpy(), torch.cat(ends).numpy()
    lo_p, hi_p = settings.ppl_percentiles
    keep = (np.percentile(d, lo_p, method="lower") <= d) & (
        d <= np.percentile(d, hi_p, method="higher")
    )
    mean_d, mean_e = float(d[keep].mean()), float(e[keep].mean())
    degenerate = not mean_e > 0.0
    return {
        "ppl_karras": mean_d,
        "ppl_relative": None if degenerate else mean_d / mean_e,
        "kept": int(keep.sum()),
        "degenerate": degenerate,
    }


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` at fractions ``t`` (T,):
    (K, T, D)."""
    return _slerp(a[:, None], b[:, None], t[None, :, None])


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Slerp of ``a`` towards ``b`` (..., D) at ``t`` broadcast against (..., 1): the angle
    from the normalised vectors, the magnitudes interpolated along (these generators take
    z ~ N(0, I) as it is; StyleGAN normalises z first)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


@torch.no_grad()
def latent_paths(
    G: nn.Module,
    variant: Variant,
    evaluator: nn.Module,
    settings: InterpSettings,
    device: str = "cpu",
) -> dict[str, Any]:
    """Images, discontinuity and class changes along ``paths`` slerp paths of ``steps``.

    Returns ``images`` (K*T, 1, R, R) uint8 in path order, ``interp_discontinuity`` (mean
    over paths of max/mean consecutive feature distance; paths whose images do not change at
    all are left out, and counted in ``still_paths``: None when every path is still, so a
    constant generator is not the smoothest), ``class_changes`` (per path) and
    ``class_changes_mean``.
    """
    if settings.paths < 1 or settings.steps < 3:
        raise ValueError("latent paths need at least 1 path of at least 3 steps")
    g = torch.Generator().manual_seed(settings.seed)
    k, t = settings.paths, settings.steps
    z0, y = variant.sample_latents(k, g)
    z1, _ = variant.sample_latents(k, g)
    z = slerp(z0, z1, torch.linspace(0, 1, t)).reshape(k * t, -1).to(device)
    labels = None if y is None else y.repeat_interleave(t).to(device)
    was_training = G.training
    G.eval()
    try:
        x = G(z) if labels is None else G(z, labels)
    finally:
        G.train(was_training)
    lo, hi = variant.data.value_range
    images = to_uint8(x.float(), lo, hi).cpu()
    logits, feats = evaluator(images.to(module_device(evaluator)))
    logits, feats = logits.cpu(), feats.cpu()
    feats = feats.float().reshape(k, t, -1)
    steps = (feats[:, 1:] - feats[:, :-1]).norm(dim=-1)  # (K, T-1)
    moving = steps.mean(dim=1) > 0  # a path whose images never change has no ratio
    ratio = steps.max(dim=1).values[moving] / steps.mean(dim=1)[moving]
    cls = logits.argmax(dim=1).reshape(k, t)
    changes = (cls[:, 1:] != cls[:, :-1]).sum(dim=1)
    return {
        "images": images,
        "interp_discontinuity": float(ratio.mean()) if len(ratio) else None,
        "still_paths": int((~moving).sum()),
        "class_changes": [int(c) for c in changes],
        "class_changes_mean": float(changes.float().mean()),
    }


def save_strip(images: torch.Tensor, rows: int, path: Path) -> None:
    """Save path images as a grid, one path per row (written atomically)."""
    import io

    from torchvision.utils import save_image

    from metrics.common import write_atomic

    buf = io.BytesIO()
    save_image(images.float() / 255.0, buf, nrow=len(images) // rows, padding=1, format="png")
    write_atomic(buf.getvalue(), path)
