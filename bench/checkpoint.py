"""Checkpoints that resume exactly (weights, EMA, optimisers, step, RNG states, config,
versions), and the generator of one rebuilt for scoring."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from bench.errors import BenchError, RunFolderError
from metrics.common import atomic_path
from models.layers import has_conv
from models.plugins import describe, same_code
from models.registry import UnknownVariantError, Variant, resolve_variant

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


def check_compatible(saved: dict, current: dict, path: Path) -> None:
    """Refuse to resume a checkpoint made with another recipe or with other settings that a
    bit-exact resume needs (seed, precision, memory format).

    Raises:
        RunFolderError: naming every field that differs.
    """
    drop = ("name", "summary", "seed_doc", "origin")
    was, now = saved["variant"].get("origin"), current["variant"].get("origin")
    if not same_code(was, now):
        raise RunFolderError(
            f"{path} was written by {describe(was)}, but variant "
            f"{current['variant'].get('name')!r} now comes from {describe(now)}: its code "
            "changed since; use a new output folder or the plugin code the run used"
        )
    sv = {k: val for k, val in saved["variant"].items() if k not in drop}
    cv = {k: val for k, val in current["variant"].items() if k not in drop}
    keys = ("seed", "precision", "channels_last")  # settings a bit-exact resume needs
    ss = {k: saved["settings"].get(k) for k in keys}
    cs = {k: current["settings"].get(k) for k in keys}
    diffs = [k for k in sorted(set(sv) | set(cv)) if _plain(sv.get(k)) != _plain(cv.get(k))]
    diffs += [f"settings.{k}" for k in keys if _plain(ss[k]) != _plain(cs[k])]
    if diffs:
        raise RunFolderError(
            f"{path} was written with a different configuration ({', '.join(diffs)} differ); "
            "use a new output folder or the original settings"
        )


def load_generator(
    path: Path, network: Literal["G_ema", "G"] = "G_ema"
) -> tuple[Variant, nn.Module, dict[str, Any]]:
    """(variant, generator in eval mode, description) from one of our checkpoints.

    ``network`` is "G_ema" (what every score of ours uses) or "G", the raw trained
    generator, for measuring what the weight average adds. ``path`` is a checkpoint.pt or a
    job folder holding one. The recipe is the registered variant with the run's
    ``--faithful`` and ``--set`` settings (from the run folder's config.json), and must match
    the recipe stored in the checkpoint.

    Raises:
        BenchError: not a checkpoint of ours, or a recipe this version cannot rebuild.
    """
    ckpt = path / "checkpoint.pt" if path.is_dir() else path
    state = load_checkpoint(ckpt)
    config = state.get("config")
    saved = config.get("variant") if isinstance(config, dict) else None
    if not isinstance(saved, dict) or "name" not in saved or network not in state:
        raise BenchError(
            f"{ckpt}: damaged checkpoint (no recipe or no {network} weights); restore it"
        )
    run_config = ckpt.parent.parent.parent / "config.json"
    run: dict[str, Any] = {}
    if run_config.is_file():
        try:
            run = json.loads(run_config.read_text(encoding="utf-8")).get("run", {})
        except (OSError, ValueError):
            run = {}
    try:
        variant = resolve_variant(
            saved["name"], bool(run.get("faithful", False)), run.get("overrides") or {}
        )
    except UnknownVariantError as exc:
        hint = ""
        if saved.get("origin"):
            hint = f"; it came from plugin {describe(saved['origin'])}: load it with --plugin"
        raise BenchError(f"{ckpt}: {exc}{hint}") from None
    except ValueError as exc:
        raise BenchError(f"{ckpt}: the run's settings no longer apply ({exc})") from None
    rebuilt = variant.to_dict()
    if not same_code(saved.get("origin"), rebuilt.get("origin")):
        raise BenchError(
            f"{ckpt}: trained with {describe(saved.get('origin'))}, but variant "
            f"{saved['name']!r} now comes from {describe(rebuilt.get('origin'))}; score it "
            "with the plugin code that trained it"
        )
    for key in ("arch", "z_dim", "conditional", "data"):
        if _plain(rebuilt[key]) != _plain(saved.get(key)):
            raise BenchError(
                f"{ckpt}: trained with {key}={saved.get(key)} but variant {saved['name']!r} "
                f"now builds {key}={rebuilt[key]}; score it with the version that trained it"
            )
    G, _ = variant.build(0)
    try:
        G.load_state_dict(state[network])  # the CLI's --network choice is the one validator
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BenchError(
            f"{ckpt}: its {network} weights do not fit variant {saved['name']!r} ({first})"
        ) from None
    if state["config"].get("settings", {}).get("channels_last") and has_conv(G):
        # The layout the harness trained and scored in: convolutions in the other layout
        # take other kernels, which round differently (up to 6e-5 relative in FID).
        G.to(memory_format=torch.channels_last)
    G.eval()
    return (
        variant,
        G,
        {
            "checkpoint": str(ckpt),
            "step": state["step"],
            "variant": saved["name"],
            "network": network,
        },
    )


def _plain(x: Any) -> Any:
    """JSON round trip, so tuples and lists compare equal."""
    return json.loads(json.dumps(x))
