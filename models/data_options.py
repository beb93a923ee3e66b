"""What data a variant trains on: part of a variant's definition, read by bench's data layer.

It lives in ``models`` (not ``bench``) so that a variant module can state its data needs
without importing the orchestration layer: the import direction stays ``bench -> models``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

NUM_CLASSES = 10  # Fashion-MNIST classes
SplitScheme = Literal["official", "80/10/10"]


@dataclass(frozen=True)
class DataOptions:
    """Which images a variant trains on and how they are presented to the model."""

    classes: tuple[int, ...] | None = None  # class subset, e.g. (0, 1) for seed 003; None = all
    fraction: float = 1.0  # share of the training part kept (seed 004 trains on 0.5)
    fraction_seed: int = 0  # the subset is fixed across training seeds, so seeds compare
    split: SplitScheme = "official"  # "80/10/10" carves train/val/holdout from the train file
    split_seed: int = 0  # permutation seed of the 80/10/10 split
    resolution: int = 28  # 28 native, or 64 (bilinear upscale, as seed 001's Resize(64))
    value_range: tuple[float, float] = (-1.0, 1.0)  # model range; Tanh generators use [-1, 1]

    def validate(self) -> None:
        """Raise ValueError on an impossible option (the variant registry calls this)."""
        if self.classes is not None:
            if not self.classes or len(set(self.classes)) != len(self.classes):
                raise ValueError(f"classes must be non-empty and unique, got {self.classes}")
            if any(not 0 <= c < NUM_CLASSES for c in self.classes):
                raise ValueError(f"classes must lie in 0..{NUM_CLASSES - 1}, got {self.classes}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.split not in ("official", "80/10/10"):
            raise ValueError(f"split must be 'official' or '80/10/10', got {self.split!r}")
        if self.resolution not in (28, 64):
            raise ValueError(f"resolution must be 28 or 64, got {self.resolution}")
        lo, hi = self.value_range
        if not lo < hi:
            raise ValueError(f"value_range must be increasing, got {self.value_range}")

    @property
    def class_ids(self) -> tuple[int, ...]:
        """The classes present in training data, in order."""
        return self.classes if self.classes is not None else tuple(range(NUM_CLASSES))

    def to_dict(self) -> dict:
        """JSON-ready form for config files."""
        return asdict(self)
