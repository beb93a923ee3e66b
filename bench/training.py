"""What the training loop (:mod:`bench.harness`) and its hooks (:mod:`bench.hooks`) share:
the settings a job trains under, the state a hook may read, and the hook interface. Both
sides import this module and neither imports the other's types from the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from models.losses import GANLoss
from models.registry import Variant

Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class TrainSettings:
    """How to train (not what): budget, seed, numerics and side-output intervals."""

    kimg: float  # budget: thousands of real images shown to D
    seed: int = 0  # model init, noise stream and batch order all derive from it
    precision: Precision = "fp32"  # "bf16": CPU/GPU autocast (commands choose: resolve_precision)
    channels_last: bool = True  # NHWC convolutions: faster on CPU oneDNN and GPU tensor cores
    device: str = "cpu"
    checkpoint_kimg: float = 10.0  # resumable checkpoint interval
    grid_kimg: float = 5.0  # fixed-noise sample grid interval
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    # Steps between read-backs of the loss statistics. Reading a GPU scalar waits for the GPU,
    # so a per-step read would serialise host and device; None: every step on the CPU (where a
    # read is free), every 50 on CUDA. Every step is still logged and checked for NaN, and
    # statistics are always read back before a checkpoint, so no broken weights are saved.
    sync_every: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class TrainingState(Protocol):
    """What a hook sees of the running loop (:class:`bench.harness.Trainer` is one)."""

    variant: Variant
    settings: TrainSettings
    out_dir: Path
    device: torch.device
    loss: GANLoss
    G_ema: nn.Module
    hooks: list[Hook]
    step: int  # iterations done
    total_steps: int  # iterations of the whole budget
    images_per_step: int  # real images D sees per iteration

    @property
    def kimg(self) -> float:
        """Thousands of real images shown to D so far."""
        ...

    def every(self, interval_kimg: float) -> int:
        """An interval in kimg as a whole number of steps (at least 1)."""
        ...

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """G_ema's images at the fixed grid noise, and the grid's row length."""
        ...


class Hook:
    """Side outputs of training. Every method is optional."""

    def on_start(self, trainer: TrainingState) -> None:
        """Called once before the first step (after a resume, if any)."""

    def after_step(self, trainer: TrainingState) -> None:
        """Called after each iteration (grids, metrics, signals: what needs the models)."""

    def on_stats(self, trainer: TrainingState, rows: list[dict[str, float]]) -> None:
        """Called with the iterations' losses, read back together (``TrainSettings.
        sync_every``): one row per step, oldest first, each with ``step`` and ``kimg``."""

    def before_checkpoint(self, trainer: TrainingState) -> None:
        """Called before a checkpoint is written: flush anything that must be on disk."""

    def on_end(self, trainer: TrainingState) -> None:
        """Called once after the last step."""
