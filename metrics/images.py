"""Images as the metrics take them: uint8 (N, C, H, W), from model outputs or from what a
user brings to ``bench score`` (a folder of image files or an .npz array).

Everything becomes one uint8 tensor (N, C, H, W) with C in {1, 3}, which every extractor
takes; anything else is a :class:`MetricInputError` saying what was found and what is expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from metrics.family import MetricInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def load_images(path: str | Path) -> torch.Tensor:
    """uint8 images (N, C, H, W) from a folder of image files or an .npz file."""
    p = Path(path)
    if p.is_dir():
        return _from_folder(p)
    if p.is_file() and p.suffix == ".npz":
        return _from_npz(p)
    raise MetricInputError(f"{p}: expected a folder of images or an .npz file")


def _from_folder(folder: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MetricInputError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for f in files:
        try:
            x = decode_image(str(f), mode=ImageReadMode.UNCHANGED)
        except Exception as exc:
            raise MetricInputError(f"{f}: not a readable image ({exc})") from None
        if x.shape[0] in (2, 4):  # drop alpha
            x = x[: x.shape[0] - 1]
        images.append(x)
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise MetricInputError(f"{folder}: images differ in size or mode: {sorted(shapes)[:4]}")
    return torch.stack(images)


def _from_npz(path: Path) -> torch.Tensor:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise MetricInputError(f"{path}: not a readable .npz ({exc})") from None
    if len(arrays) != 1:
        raise MetricInputError(
            f"{path}: expected one image array, found {len(arrays)} ({', '.join(arrays)})"
        )
    ((name, a),) = arrays.items()
    if a.dtype != np.uint8:
        raise MetricInputError(
            f"{path}: array {name!r} is {a.dtype}; expected uint8 0..255 (convert with "
            f"(x * 255).round().clip(0, 255).astype('uint8') for [0, 1] floats)"
        )
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.ndim != 4 or a.shape[1] not in (1, 3) or a.shape[0] == 0:
        raise MetricInputError(
            f"{path}: array {name!r} has shape {a.shape}; expected (N, H, W), (N, H, W, C) or "
            f"(N, C, H, W) with C 1 or 3"
        )
    return torch.from_numpy(np.ascontiguousarray(a))


def to_uint8(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Map model outputs in [lo, hi] to uint8 0..255 (rounded, clipped), as a PNG would."""
    return ((x - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def to_signed_unit(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """Map model outputs in [lo, hi] to float [-1, 1] without rounding (for distances
    between images too close for uint8 levels, as in path lengths)."""
    return (x.float() - lo) * (2.0 / (hi - lo)) - 1.0


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


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for an empty one)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")
