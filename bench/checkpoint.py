"""Checkpoints that resume exactly: weights, EMA, optimisers, step, RNG states, config, versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from bench.errors import BenchError
from bench.fsutil import atomic_path

CHECKPOINT_FORMAT = 1  # bump when the dict layout changes incompatibly


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically (a kill mid-write keeps the old file)."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only).

    Raises:
        BenchError: for a file that is not a readable checkpoint of this format.
    """
    p = Path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise BenchError(f"{p}: not a readable fmgan-bench checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise BenchError(
            f"{p}: checkpoint format {state.get('format') if isinstance(state, dict) else '?'}, "
            f"this version reads format {CHECKPOINT_FORMAT}"
        )
    return state


def rng_state(device: torch.device, noise: torch.Generator) -> dict[str, torch.Tensor]:
    """Every random stream training draws from: torch's global CPU/CUDA RNGs and the noise RNG."""
    state = {"torch": torch.get_rng_state(), "noise": noise.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(
    state: dict[str, torch.Tensor], device: torch.device, noise: torch.Generator
) -> None:
    """Restore the streams saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    noise.set_state(state["noise"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
