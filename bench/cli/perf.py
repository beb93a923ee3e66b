"""``bench perf`` and ``bench perf-metrics``: training throughput and metric cost."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.base import cli
from bench.cli.options import (
    checked_device,
    data_dir_option,
    inception_weights_option,
    parse_variants,
)


@cli.command("perf")
@click.option(
    "--variants",
    callback=parse_variants,
    default=None,
    help="Comma-separated variants (default: all).",
)
@click.option("--precision", "precisions", default="fp32,bf16", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True)
def perf_cmd(
    variants: tuple | None,
    precisions: str,
    steps: int,
    warmup: int,
    channels_last: bool,
    device: str,
) -> None:
    """Benchmark training throughput (real images per second) per variant and precision.

    Times full training iterations (D steps, G step, EMA) on random uint8 images of the
    variant's shape; data content does not change the cost. Each variant is timed first as
    plain eager fp32 in NCHW (the baseline a plain PyTorch loop gets), then in each requested
    precision with the chosen memory format; the last column is the ratio to the baseline.
    Writes nothing.
    """
    import torch

    import models
    from bench.data import random_dataset
    from bench.harness import Trainer, TrainSettings

    precs = [p.strip() for p in precisions.split(",") if p.strip()]
    for p in precs:
        if p not in ("fp32", "bf16"):
            raise click.BadParameter(f"{p!r}: choose fp32 and/or bf16", param_hint="--precision")
    dev = checked_device(device)
    names = variants or tuple(models.variant_names())
    configs = [("fp32", False), *((p, channels_last) for p in precs)]
    configs = list(dict.fromkeys(configs))  # the baseline once, even if asked for again
    click.echo(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    click.echo(f"{'variant':<20} {'config':<10} {'img/s':>8} {'ms/iter':>8} {'x fp32':>7}")
    for name in names:
        v = models.get_variant(name)
        n = v.batch_size * v.build_loss().n_critic * 2
        data = random_dataset(n, v.resolution, v.data.class_ids)
        base = None
        for prec, cl in configs:
            settings = TrainSettings(
                kimg=1e9, precision=prec, channels_last=cl, device=dev, progress=False
            )  # type: ignore[arg-type]
            tr = Trainer(v, data, settings, out_dir=Path("/nonexistent-perf"))
            for _ in range(warmup):
                tr.train_step()
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.train_step()  # statistics stay on the device, as in training
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            rate = steps * tr.images_per_step / dt
            base = base or rate
            label = prec + ("-cl" if tr.channels_last else "-nchw")
            click.echo(
                f"{name:<20} {label:<10} {rate:>8.0f} {1000 * dt / steps:>8.1f} {rate / base:>7.2f}"
            )


@cli.command("perf-metrics")
@click.option("--images", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--evaluator-samples", type=click.IntRange(min=2), default=10_000, show_default=True)
@inception_weights_option
@data_dir_option
def perf_metrics_cmd(
    images: int,
    batch_size: int,
    evaluator_samples: int,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Benchmark metric cost: Inception extraction img/s, torch-fidelity's default NCHW path
    vs channels_last (with the max feature difference), and the evaluator metrics at 10k.

    Uses real test images (28x28 gray, replicated to RGB and upscaled to 299x299 inside the
    extractor, as in scoring). Writes nothing but the usual reference-feature cache.
    """
    import torch

    from bench.data import cache_dir, load_part
    from bench.scoring import Scorer
    from metrics.inception import InceptionUnavailable, load_inception
    from metrics.suite import EvalSettings, extract
    from models.data_options import DataOptions

    dd = str(data_dir) if data_dir is not None else None
    test = load_part(DataOptions(), "test", dd)
    x = test.images[:images]
    click.echo(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch_size}")
    weights = str(inception_weights) if inception_weights else None
    try:
        feats = {}
        for layout in ("nchw", "channels_last"):
            loaded = load_inception(cache_dir(), weights, channels_last=layout != "nchw")
            extract(loaded.extractor, x[:batch_size], batch_size)  # warm-up
            t0 = time.perf_counter()
            feats[layout] = extract(loaded.extractor, x, batch_size)["2048"]
            dt = time.perf_counter() - t0
            click.echo(
                f"inception {loaded.weights.extractor:<28} {layout:<14} "
                f"{images / dt:7.1f} img/s  ({dt:.1f} s for {images})"
            )
        diff = (feats["nchw"] - feats["channels_last"]).abs().max().item()
        scale = feats["nchw"].abs().max().item()
        click.echo(f"max |pool3 nchw - channels_last| = {diff:.2e} (max |pool3| {scale:.2f})")
    except InceptionUnavailable as exc:
        click.echo(f"inception: unavailable ({exc})")
    scorer = Scorer(EvalSettings(num_samples=evaluator_samples), dd, "cpu")
    scorer.reference(None)  # cached reference features, as in a run after the first job
    real = test.images[:evaluator_samples]
    t0 = time.perf_counter()
    row = scorer.score_images(real, None, None)
    dt = time.perf_counter() - t0
    click.echo(
        f"evaluator metrics on {len(real)} images: {dt:.1f} s "
        f"(FID(fmnist) of test vs itself {row['metrics']['fid_fmnist']:.3f})"
    )
