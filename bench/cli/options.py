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


def load_plugins(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """Load each ``--plugin`` now (the option is eager, so ``--variants`` and the VARIANT
    argument see its variants); return them as every process of a run loads them."""
    from models.plugins import PluginError, canonical, load_plugin

    for spec in value:
        try:
            load_plugin(spec)
        except PluginError as exc:
            raise click.BadParameter(str(exc), param_hint="--plugin") from None
    return tuple(canonical(s) for s in value)


plugin_option = click.option(
    "--plugin",
    "plugins",
    multiple=True,
    is_eager=True,
    expose_value=True,
    callback=load_plugins,
    metavar="FILE.py|MODULE",
    help="Load variants (and losses) from a Python file or an importable module that "
    "registers them; repeatable. Installed packages with a `fmgan_bench.variants` entry "
    "point load without it.",
)


def parse_variants(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one variant name")
    return tuple(dict.fromkeys(check_variant(v) for v in items))


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A number option that must be finite (click's FloatRange lets inf and nan through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


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
copying_inception_option = click.option(
    "--copying-inception",
    is_flag=True,
    help="Run the data-copying test on Inception features as well (with --inception-samples): "
    "one Inception pass over every training image of the classes, cached (about an hour "
    "on 2 CPU cores at 10-17 img/s, under a minute on a GPU).",
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


precision_option = click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="Training numerics. auto: an existing --out folder's precision; else bf16 "
    "autocast on a CPU with native bf16 (AVX-512 BF16/AMX: 1.6-3x faster, FID within "
    "seed noise), fp32 elsewhere (other CPUs, CUDA). Every row records it.",
)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cpu, cuda, cuda:N, or auto (cuda when available).",
)
progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: only when stderr is a terminal).",
)
threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per job (default: all cores for one job at a time, cores / N "
    "with --jobs N). CPU results depend on it; every row records it.",
)


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
            callback=finite,
            help="Override the profile's budget: thousands of real images shown to D.",
        ),
        precision_option,
        click.option(
            "--channels-last/--no-channels-last",
            default=True,
            show_default=True,
            help="NHWC memory format for convolutional models.",
        ),
        device_option,
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
        progress_option,
        threads_option,
        plugin_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def parse_draws(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    """``--draws``: comma-separated non-negative seeds, at least one, no repeats."""
    try:
        seeds = [int(d) for d in value.split(",") if d.strip()]
    except ValueError:
        raise click.BadParameter("give integer seeds, e.g. 0,1,2") from None
    if not seeds:
        raise click.BadParameter("give at least one seed, e.g. 0 or 0,1,2")
    if any(d < 0 for d in seeds) or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"{value!r}: seeds are distinct integers >= 0, e.g. 0,1,2")
    return seeds


def draws_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--draws``: the seeds of the training-image draws (see :func:`parse_draws`)."""
    return click.option(
        "--draws", default=default, show_default=True, callback=parse_draws,
        help="Comma-separated seeds of the training-image draws, e.g. 0,1,2.",
    )  # fmt: skip


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


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``bench run``'s engine options: where the jobs run (see bench.cluster)."""
    opts = [
        click.option(
            "--executor",
            type=click.Choice(["local", "slurm", "submitit-local"]),
            default="local",
            show_default=True,
            help="local: in this process (or --jobs N worker processes); slurm: one Slurm job "
            "array task per job through submitit, requeued on timeout or preemption; "
            "submitit-local: the same submitit path as local processes.",
        ),
        click.option(
            "--cluster-config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="TOML file with a [slurm] table: partition, time_min, gpus, cpus, mem_gb, "
            "parallel, signal_delay_s, max_requeues, params (sbatch options), setup (shell "
            "lines). The --slurm-* options override it.",
        ),
        click.option("--slurm-partition", default=None, help="Slurm partition."),
        click.option(
            "--slurm-time",
            type=click.IntRange(min=1),
            default=None,
            help="Time limit per job in minutes (default 240); a job that reaches it "
            "checkpoints and is requeued.",
        ),
        click.option(
            "--slurm-gpus",
            type=click.IntRange(min=0),
            default=None,
            help="GPUs per job (default 0).",
        ),
        click.option(
            "--slurm-cpus",
            type=click.IntRange(min=1),
            default=None,
            help="CPUs per job (default 2); also its torch threads unless --threads.",
        ),
        click.option(
            "--slurm-mem",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Memory per job in GB.",
        ),
        click.option(
            "--slurm-parallel",
            type=click.IntRange(min=1),
            default=None,
            help="At most this many jobs of the array at once.",
        ),
        click.option(
            "--slurm-param",
            "slurm_params",
            multiple=True,
            callback=parse_overrides,
            metavar="KEY=VALUE",
            help="Any further sbatch option, e.g. --slurm-param account=abc --slurm-param qos=low.",
        ),
        click.option(
            "--detach",
            is_flag=True,
            help="With slurm or submitit-local: return once the jobs are submitted; follow "
            "them with `bench status RUN_DIR`.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def cluster_settings(
    executor: str,
    cluster_config: Path | None,
    slurm_partition: str | None,
    slurm_time: int | None,
    slurm_gpus: int | None,
    slurm_cpus: int | None,
    slurm_mem: float | None,
    slurm_parallel: int | None,
    slurm_params: tuple[tuple[str, str], ...],
) -> Any:
    """The ClusterSettings the options ask for, or None for the local executor."""
    if executor == "local":
        given = [slurm_partition, slurm_time, slurm_gpus, slurm_cpus, slurm_mem, slurm_parallel]
        if cluster_config is not None or slurm_params or any(v is not None for v in given):
            raise click.UsageError("--cluster-config and --slurm-* need --executor slurm or "
                                   "submitit-local")  # fmt: skip
        return None
    from bench.cluster import ClusterSettings

    given_values = dict(
        engine=executor, partition=slurm_partition, time_min=slurm_time, gpus=slurm_gpus,
        cpus=slurm_cpus, mem_gb=slurm_mem, parallel=slurm_parallel,
        params=slurm_params or None,
    )  # fmt: skip
    if cluster_config is not None:
        return ClusterSettings.from_toml(cluster_config, **given_values)
    return ClusterSettings.checked(**{k: v for k, v in given_values.items() if v is not None})
