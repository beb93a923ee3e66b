"""The picture people look at when they suspect memorisation: a fixed handful of a
generator's samples, each above its nearest training image in the evaluator's feature space
and in pixels. Written next to each scored job (``nearest.png``) and shown by `bench report`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from metrics.common import atomic_path

SHOWN = 8  # samples in the figure: the first of the metric-seed samples


def nearest_indices(queries: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``pool`` (Euclidean, float64) for each row of ``queries``."""
    return torch.cdist(queries.double(), pool.double()).argmin(dim=1)


def nearest_figure(
    samples: torch.Tensor,
    sample_feats: torch.Tensor,
    train_images: torch.Tensor,
    train_feats: torch.Tensor,
    path: Path,
) -> dict[str, list[int]]:
    """Write a 3-row PNG to ``path``: the samples (uint8, N x 1 x H x W), their nearest
    training images by features, and by pixels; return the training indices of both rows."""
    import torchvision.utils as vutils  # deferred: importing torchvision costs seconds
    from PIL import Image

    n = min(SHOWN, len(samples))
    by_feature = nearest_indices(sample_feats[:n], train_feats)
    flat = train_images.flatten(1).float()
    by_pixel = nearest_indices(samples[:n].flatten(1).float(), flat)
    tiles = torch.cat([samples[:n], train_images[by_feature], train_images[by_pixel]])
    grid = vutils.make_grid(tiles.float() / 255.0, nrow=n, padding=2, pad_value=1.0)
    arr = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("L")
    image = image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="png")
    return {"by_features": by_feature.tolist(), "by_pixels": by_pixel.tolist()}
