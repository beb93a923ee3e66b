"""The Python API: what ``bench run``, ``bench score`` and ``bench report`` do, as functions
for a notebook or a script, without a subprocess. The commands call these same functions.

    import bench.api as fb

    rows = fb.train(["dcgan", "wgan-gp"], seeds=3, profile="quick", out="runs/mine")
    frame = fb.load_results("runs/mine")                  # the tidy frame of `bench report`
    scored = fb.score("runs/mine/dcgan/seed0")            # a checkpoint or its job folder
    scored = fb.score(images_uint8)                       # (N, H, W) or (N, C, H, W) uint8
    scored = fb.score(my_generator, variant="dcgan")      # any module with G(z, labels)

Errors the user can fix raise :class:`bench.errors.BenchError` (or ``ValueError`` for a bad
argument) with the message the command line would print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from bench.cluster import ClusterSettings
    from bench.jobs import RunPlan
    from models.registry import Variant


def plan_run(
    variants: str | Iterable[str],
    seeds: int | Iterable[int] = 1,
    profile: str = "quick",
    out: str | Path | None = None,
    *,
    kimg: float | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    overrides: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    check_data: bool = True,
    **options: Any,
) -> RunPlan:
    """The run plan of a training command, built once and checked: every variant resolves
    with its plugins and ``overrides``, and (``check_data``) the data is found and every
    variant can train on it. Arguments as :func:`train`; ``out`` is the run folder whose
    recorded precision 'auto' resumes.

    Raises:
        BenchError: an unknown variant or plugin, a bad override, missing data, a variant
            that cannot train.
    """
    from bench.data import locate
    from bench.jobs import RunPlan, resolve_device
    from models.plugins import PluginError

    names = (variants,) if isinstance(variants, str) else tuple(variants)
    seed_list = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    if not names or not seed_list:
        raise ValueError("train needs at least one variant and one seed")
    pairs = tuple(dict(overrides or {}).items())
    plan = RunPlan.from_options(
        profile, names, seed_list, kimg, out, device=resolve_device(device), data_dir=data_dir,
        overrides=pairs, **options,
    )  # fmt: skip
    for name in names:  # a bad name, plugin or --set fails before any folder is made
        try:
            plan.variant(name)
        except PluginError as exc:
            raise BenchError(str(exc)) from None
        except KeyError as exc:
            raise BenchError(str(exc.args[0])) from None
        except ValueError as exc:
            raise BenchError(f"--set: {exc}") from None
    if check_data:
        locate(plan.data_dir)  # a data problem must not leave an empty run folder behind
        check_trainable(plan)
    return plan


def run_plan(
    plan: RunPlan,
    out: str | Path | None = None,
    *,
    jobs: int = 1,
    cluster: ClusterSettings | None = None,
    detach: bool = False,
    echo: Callable[[str], None] = print,
    argv: list[str] | None = None,
    desc: str | None = None,
) -> list[dict[str, Any]]:
    """Execute ``plan`` in the run folder ``out`` (a new runs/<time>-<profile>-<desc> when
    None; an existing one resumes) and return the rows written now. ``jobs``, ``cluster``
    and ``detach`` choose the engine as on the command line."""
    from bench.executor import execute
    from bench.runs import RunFolder, new_run_dir

    names = plan.variants
    if desc is None:
        desc = "-".join(names) if len(names) <= 3 else f"{len(names)}-variants"
    run = RunFolder(Path(out) if out is not None else new_run_dir(f"{plan.profile.name}-{desc}"))
    sets = " ".join(f"{k}={v}" for k, v in plan.overrides)
    echo(f"run folder: {run.path}  (profile {plan.profile.name}, {plan.kimg:g} kimg per job, "
         f"{len(plan.jobs())} job(s), {plan.precision}, {plan.device})"
         + (f"\n  overrides: {sets}" if sets else ""))  # fmt: skip
    return execute(plan, run, echo=echo, argv=argv or ["bench.api.train"], jobs=jobs,
                   cluster=cluster, detach=detach)  # fmt: skip


def train(
    variants: str | Iterable[str],
    seeds: int | Iterable[int] = 1,
    profile: str = "quick",
    out: str | Path | None = None,
    *,
    kimg: float | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    overrides: Mapping[str, str] | None = None,
    jobs: int = 1,
    cluster: ClusterSettings | None = None,
    detach: bool = False,
    echo: Callable[[str], None] = print,
    argv: list[str] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Train and score ``variants`` x ``seeds`` into the run folder ``out`` (a new folder
    under runs/ when None; an existing one resumes) and return the rows written now:
    :func:`plan_run`, then :func:`run_plan`.

    ``seeds`` is a count K (seeds 0..K-1) or the seeds themselves; ``overrides`` are
    ``--set`` pairs; ``options`` are the other training options of ``bench run`` under
    their RunPlan names (``precision``: 'auto' unless given, see
    :func:`bench.jobs.resolve_precision`; ``channels_last``, ``faithful``, ``extend``,
    ``threads``, ``progress``, ``inception_samples``, ``plugins`` (files or modules whose
    variants to train), ...). ``jobs``, ``cluster`` and ``detach`` choose the executor as
    on the command line.

    Raises:
        BenchError: missing data, a locked or conflicting run folder, a bad override.
    """
    plan = plan_run(variants, seeds, profile, out, kimg=kimg, device=device,
                    data_dir=data_dir, overrides=overrides, **options)  # fmt: skip
    return run_plan(plan, out, jobs=jobs, cluster=cluster, detach=detach, echo=echo, argv=argv)


def check_trainable(plan: RunPlan) -> None:
    """Refuse, before any folder is made, a run that can never train: a budget that is not a
    positive finite number, or a variant whose training set is empty or smaller than one
    batch (a --classes/--set choice that leaves too few images).

    Raises:
        BenchError: naming the variant, its training-set size and its batch.
    """
    import math

    from bench.data import load_part

    if not (math.isfinite(plan.kimg) and plan.kimg > 0):
        raise BenchError(f"--kimg {plan.kimg}: the budget must be a positive, finite number")
    sizes: dict[Any, int] = {}
    for name in plan.variants:
        v = plan.variant(name)
        if v.data not in sizes:
            sizes[v.data] = len(load_part(v.data, "train", plan.data_dir))
        n = sizes[v.data]
        if n < v.batch_size:
            what = "no training images" if n == 0 else f"{n} training images"
            raise BenchError(
                f"variant {name!r} has {what} (classes {list(v.data.class_ids)}, its data "
                f"settings) but a batch of {v.batch_size}: it cannot train; choose more data "
                "or a smaller --set batch_size"
            )


def score(
    target: str | Path | torch.Tensor | np.ndarray | nn.Module,
    *,
    variant: str | Variant | None = None,
    network: str = "G_ema",
    samples: int = 10_000,
    inception_samples: int = 0,
    ppl_samples: int = 0,
    classes: tuple[int, ...] | None = None,
    metric_seed: int = 2020,
    device: str = "auto",
    data_dir: str | Path | None = None,
    inception_weights: str | Path | None = None,
    reference_stats: Iterable[str | Path] = (),
    strip: str | Path | None = None,
    plugins: Iterable[str | Path] = (),
    copying_inception: bool = False,
    cas_samples: int = 0,
) -> dict[str, Any]:
    """Every available metric of ``target`` against the Fashion-MNIST test split: the
    row fields ``metrics``, ``metrics_unavailable``, ``protocol`` and ``eval_seconds``, plus
    ``target`` (what was scored).

    ``target`` is one of our checkpoints (checkpoint.pt or its job folder; ``network``
    G_ema or G), an image folder or .npz path, a uint8 image array/tensor ((N, H, W),
    (N, H, W, C) or (N, C, H, W)), or a generator module called as ``G(z, labels)`` with the
    latents and labels of ``variant`` (a registered name or a Variant), in eval mode.
    ``plugins`` are loaded first (``--plugin``): a checkpoint of a plugin variant needs them.
    ``copying_inception`` and ``cas_samples``: as :class:`metrics.family.EvalSettings`.

    Raises:
        BenchError: an unreadable target, missing data or weights, images that cannot be
            scored (the message says why).
    """
    import torch

    from bench.checkpoint import load_generator
    from bench.data import locate
    from bench.jobs import resolve_device
    from bench.reference import load_reference
    from bench.scoring import Scorer
    from metrics.family import EvalSettings, MetricInputError
    from metrics.images import load_images
    from models.plugins import PluginError, ensure_plugins
    from models.registry import Variant, get_variant

    try:
        ensure_plugins([str(spec) for spec in plugins])
    except PluginError as exc:
        raise BenchError(str(exc)) from None
    dev = resolve_device(device)
    settings = EvalSettings(samples, metric_seed, inception_samples=inception_samples,
                            ppl_samples=ppl_samples, copying_inception=copying_inception,
                            cas_samples=cas_samples)  # fmt: skip
    refs = [load_reference(Path(p)) for p in reference_stats]
    dd = str(data_dir) if data_dir is not None else None
    if not refs:
        locate(dd)
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, dev, weights, refs)
    scorer.check_references()
    strip_path = Path(strip) if strip is not None else None
    try:
        if isinstance(target, torch.nn.Module):
            if variant is None:
                raise ValueError("scoring a generator module needs variant= (its latents)")
            v = variant if isinstance(variant, Variant) else get_variant(variant)
            about: dict[str, Any] = {"generator": type(target).__name__, "variant": v.name}
            row = scorer.score(v, target.to(dev).eval(), strip_path=strip_path)
        elif isinstance(target, str | Path) and (
            Path(target).suffix == ".pt" or (Path(target) / "checkpoint.pt").is_file()
        ):
            v, G, about = load_generator(Path(target), network)  # type: ignore[arg-type]
            row = scorer.score(v, G.to(dev), strip_path=strip_path)
        else:
            images = _as_images(target) if not isinstance(target, str | Path) else None
            if images is None:
                images = load_images(Path(target))  # type: ignore[arg-type]
                about = {"images": str(target)}
            else:
                about = {"images": "array"}
            about.update(count=len(images), shape=list(images.shape[1:]))
            row = scorer.score_images(images, None, classes)
    except MetricInputError as exc:
        raise BenchError(str(exc)) from None
    if row.get("metrics_error"):
        what = target if isinstance(target, str | Path) else about
        raise BenchError(f"cannot score {what}: {row['metrics_error']}")
    return {"target": about, **row}


def _as_images(array: Any) -> torch.Tensor:
    """A uint8 array or tensor as (N, C, H, W) uint8, channels first."""
    import numpy as np
    import torch

    t = torch.from_numpy(np.asarray(array)) if not isinstance(array, torch.Tensor) else array
    if t.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0..255), got {t.dtype}")
    if t.dim() == 3:
        t = t[:, None]
    elif t.dim() == 4 and t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.dim() != 4:
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W), got {tuple(t.shape)}"
        )
    return t.contiguous()


def load_results(*run_dirs: str | Path) -> pd.DataFrame:
    """The tidy frame of ``bench report`` over one or more run folders: one row per (run,
    variant, seed, metric) with value, direction, whether it is ranked, and its protocol.

    Raises:
        BenchError: a folder without results.
    """
    from bench.reports import read_runs
    from reports.frame import tidy

    if not run_dirs:
        raise ValueError("load_results needs at least one run folder")
    runs = read_runs([Path(d) for d in run_dirs])
    return tidy({label: rows for label, (_, rows) in runs.items()})
