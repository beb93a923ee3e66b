"""Options and parameter types shared by the commands: variant lists, ``--set`` pairs, class
lists, data and weights paths, the training options of ``run`` and ``train``, devices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bench.profiles import DEFAULT_PROFILE, PROFILES


def variant_names() -> list[str]:
    import models

    return models.variant_names()


def check_variant(name: str) -> str:
    names = variant_names()
    if name not in names:
        raise click.BadParameter(f"unknown variant {name!r}; choose from: {', '.join(names)}")
    return name


def parse_variants(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one variant name")
    return tuple(dict.fromkeys(check_variant(v) for v in items))


def parse_overrides(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    pairs: dict[str, str] = {}
    for item in value:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. arch.gch=32)")
        pairs[key.strip()] = raw
    return tuple(pairs.items())


inception_weights_option = click.option(
    "--inception-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="torch-fidelity's TF-Inception weights (weights-inception-2015-12-05-*.pth); else "
    "$FMGAN_INCEPTION_WEIGHTS, torch hub's cache, a download, or the offline pool3.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="FMGAN_DATA_DIR",
    help="Folder with the four Fashion-MNIST IDX files (else Debian's, else download).",
)
reference_stats_option = click.option(
    "--reference-stats",
    "reference_stats",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference features exported by `bench reference export`, used instead of "
    "extracting them (refused unless made with the extractor and weights in use).",
)


def load_references(paths: tuple[Path, ...]) -> list[Any]:
    from bench.reference import load_reference

    return [load_reference(p) for p in paths]


def train_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `train` and `run`."""
    opts = [
        click.option(
            "--profile",
            type=click.Choice(list(PROFILES)),
            default=DEFAULT_PROFILE,
            show_default=True,
            help="Budget: smoke (tests), ci (the CI gate), quick (CPU default), lucic (GPU-sized).",
        ),
        click.option(
            "--kimg",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Override the profile's budget: thousands of real images shown to D.",
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16"]),
            default="fp32",
            show_default=True,
            help="bf16 autocast (about 1.7x faster on AVX-512 bf16 CPUs); fp32 is the reference.",
        ),
        click.option(
            "--channels-last/--no-channels-last",
            default=True,
            show_default=True,
            help="NHWC memory format for convolutional models.",
        ),
        click.option(
            "--device",
            default="auto",
            show_default=True,
            help="cpu, cuda, cuda:N, or auto (cuda when available).",
        ),
        data_dir_option,
        click.option(
            "--faithful",
            is_flag=True,
            help="Train on each seed document's own data settings (e.g. seed 004's random half "
            "of the training set) instead of the common full training set.",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            callback=parse_overrides,
            metavar="KEY=VALUE",
            help="Override a recipe setting for every variant of the run, e.g. --set "
            "arch.gch=32 --set optim.betas=0.5,0.999 --set augment=none --set ema_decay=0 "
            "--set loss_kwargs.n_critic=2. Recorded in config.json and every row.",
        ),
        click.option(
            "--extend",
            is_flag=True,
            help="Continue an existing --out folder to a larger --kimg: every finished job "
            "resumes from its checkpoint (bit-identical to training the larger budget from "
            "the start) and gets a new row; the old rows stay in results.jsonl.",
        ),
        inception_weights_option,
        click.option(
            "--inception-samples",
            type=click.IntRange(min=0),
            default=None,
            help="Images for the Inception metrics (default: the profile's; 0 skips them).",
        ),
        reference_stats_option,
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar (default: only when stderr is a terminal).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(min=1),
            default=None,
            help="CPU threads per job (default: all cores for one job at a time, cores / N "
            "with --jobs N). CPU results depend on it; every row records it.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def checked_device(device: str) -> str:
    import torch

    from bench.jobs import resolve_device

    dev = resolve_device(device)
    try:
        d = torch.device(dev)
    except RuntimeError:
        raise click.BadParameter(f"{device!r} is not a device (cpu, cuda, cuda:N, auto)") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA requested but no GPU is visible; use --device cpu")
    if d.type not in ("cpu", "cuda"):
        raise click.BadParameter(f"device type {d.type!r} is not supported (cpu, cuda)")
    return dev


# ---------------------------------------------------------------------- commands


def parse_classes(classes: str | None) -> tuple[int, ...] | None:
    if classes is None:
        return None
    try:
        ids = tuple(sorted({int(c) for c in classes.split(",") if c.strip()}))
    except ValueError:
        raise click.BadParameter("give class ids 0..9, e.g. 0,1", param_hint="--classes") from None
    if not ids or not all(0 <= c <= 9 for c in ids):
        raise click.BadParameter("class ids must be in 0..9", param_hint="--classes")
    return ids
