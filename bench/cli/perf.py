"""``bench perf`` and ``bench perf-metrics``: training throughput and metric cost."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bench.cli.base import cli
from bench.cli.options import (
    checked_device,
    data_dir_option,
    inception_weights_option,
    parse_variants,
)
from metrics.family import EvalSettings

INCEPTION_BATCH = EvalSettings.inception_batch_size  # scoring's CPU default


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

    Times full training iterations on random uint8 images of the variant's shape (data
    content does not change the cost). First the reference: the same networks, loss and
    Adam settings trained by a plain eager fp32 NCHW loop written as pytorch/examples'
    dcgan/main.py writes it (one G forward per iteration, reused by the D and the G step; a
    fresh fake per D step when the loss takes several; losses read with `.item()`; no EMA).
    Then the harness (n_critic D steps, a G step on fresh noise, the EMA update, statistics
    left on the device): plain fp32 NCHW, then each requested precision with the chosen
    memory format. The last column is the ratio to the reference. Writes nothing.
    """
    import torch

    import models
    from bench.data import random_dataset
    from bench.harness import Trainer, TrainSettings
    from bench.jobs import resolve_precision
    from bench.provenance import cpu_bf16

    precs = [p.strip() for p in precisions.split(",") if p.strip()]
    for p in precs:
        if p not in ("fp32", "bf16"):
            raise click.BadParameter(f"{p!r}: choose fp32 and/or bf16", param_hint="--precision")
    dev = checked_device(device)
    names = variants or tuple(models.variant_names())
    configs = [("fp32", False), *((p, channels_last) for p in precs)]
    configs = list(dict.fromkeys(configs))  # the baseline once, even if asked for again
    native = ", ".join(cpu_bf16()) or "none: bf16 is emulated, expect it slower than fp32"
    click.echo(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
               f"CPU native bf16: {native}; training default here "
               f"(--precision auto): {resolve_precision('auto', dev)}")  # fmt: skip
    click.echo(f"{'variant':<20} {'config':<12} {'img/s':>8} {'ms/iter':>8} {'x ref':>7}")

    def sync() -> None:
        if dev.startswith("cuda"):
            torch.cuda.synchronize()

    for name in names:
        v = models.get_variant(name)
        per_step = v.batch_size * v.build_loss().n_critic
        data = random_dataset(per_step * 2, v.resolution, v.data.class_ids)
        step = _reference_step(v, data, dev)
        for _ in range(warmup):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        dt = time.perf_counter() - t0
        ref = steps * per_step / dt
        click.echo(f"{name:<20} {'reference':<12} {ref:>8.0f} {1000 * dt / steps:>8.1f} "
                   f"{1.0:>7.2f}")  # fmt: skip
        shown: set[str] = set()
        for prec, cl in configs:
            settings = TrainSettings(
                kimg=1e9, precision=prec, channels_last=cl, device=dev, progress=False
            )  # type: ignore[arg-type]
            tr = Trainer(v, data, settings, out_dir=Path("/nonexistent-perf"))
            label = prec + ("-cl" if tr.channels_last else "-nchw")
            if label in shown:  # channels-last asked of a model without convolutions
                continue
            shown.add(label)
            for _ in range(warmup):
                tr.train_step()
            sync()
            t0 = time.perf_counter()
            for _ in range(steps):
                tr.train_step()  # statistics stay on the device, as in training
            sync()
            dt = time.perf_counter() - t0
            rate = steps * tr.images_per_step / dt
            click.echo(
                f"{name:<20} {label:<12} {rate:>8.0f} {1000 * dt / steps:>8.1f} {rate / ref:>7.2f}"
            )


def _reference_step(v: Any, data: Any, device: str) -> Callable[[], None]:
    """One iteration of the plain loop ``bench perf`` compares the harness with."""
    import torch

    from bench.data import to_model_range

    loss = v.build_loss()
    G, D = v.build(0)
    G.to(device).train(), D.to(device).train()
    o = v.optim
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=o.betas, eps=o.eps)
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=o.betas, eps=o.eps)
    images, labels = data.images.to(device), data.labels.to(device)
    batch = v.batch_size

    def step() -> None:
        for k in range(loss.n_critic):
            idx = torch.randint(len(images), (batch,), device=device)
            real = to_model_range(images[idx], v.data.value_range)
            y = labels[idx] if v.conditional else None
            z, y_fake = v.sample_latents(batch, device=device)
            if k == 0:
                fake = G(z, y_fake)  # the one forward the G step reuses
                d_in = fake.detach()
            else:
                with torch.no_grad():
                    d_in = G(z, y_fake)
            d_loss, _ = loss.d_loss(D, real, d_in, y, y_fake)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            d_loss.item()
        if loss.n_critic > 1:  # the fake of the first D step is stale by now
            z, y_fake = v.sample_latents(batch, device=device)
            fake = G(z, y_fake)
        g_loss, _ = loss.g_loss(D, fake, y_fake)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        g_loss.item()

    return step


@cli.command("perf-metrics")
@click.option("--images", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=INCEPTION_BATCH,
    show_default=True,
    help="Inception batch of the layout comparison (scoring's CPU default).",
)
@click.option(
    "--inception-batches",
    default="64,16,8,4",
    show_default=True,
    help="Comma-separated Inception batch sizes to time (channels-last), each with its "
    "features' max difference from the first's: the batch is a speed setting, not part of "
    "the result.",
)
@click.option(
    "--evaluator-samples",
    default="1000,10000,50000",
    show_default=True,
    help="Comma-separated sample counts at which to time the evaluator metrics (training "
    "images stand in for generated ones, against the 10,000 test images).",
)
@click.option(
    "--cas-samples",
    default="2000,10000",
    show_default=True,
    help="Comma-separated training-set sizes at which to time CAS's classifier (labelled "
    "training images stand in for conditional samples); empty to skip.",
)
@inception_weights_option
@data_dir_option
def perf_metrics_cmd(
    images: int,
    batch_size: int,
    inception_batches: str,
    evaluator_samples: str,
    cas_samples: str,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Benchmark metric cost: Inception extraction img/s, torch-fidelity's default NCHW path
    vs channels_last (with the max feature difference), the evaluator metrics at 10k, and
    CAS's classifier (train on N labelled images, test on the 10,000 test images).

    Uses real test images (28x28 gray, replicated to RGB and upscaled to 299x299 inside the
    extractor, as in scoring). Writes nothing but the usual reference-feature cache.
    """
    import torch

    from bench.data import cache_dir, load_part
    from bench.scoring import Scorer
    from metrics.family import EvalSettings
    from metrics.inception import InceptionUnavailable, load_inception
    from metrics.suite import extract
    from models.data_options import DataOptions

    batches = _counts(inception_batches, "--inception-batches", allow_empty=True, low=1)
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
        _time_inception_batches(loaded.extractor, x, batches)
    except InceptionUnavailable as exc:
        click.echo(f"inception: unavailable ({exc})")
    counts = _counts(evaluator_samples, "--evaluator-samples", allow_empty=False)
    cas_counts = _counts(cas_samples, "--cas-samples", allow_empty=True)
    from metrics.suite import extract as run_extractor

    train = load_part(DataOptions(), "train", dd)
    click.echo("evaluator metrics (N training images vs the 10,000 test images):")
    click.echo(f"{'N':>7} {'features s':>10} {'metrics s':>10} {'total s':>8} {'x per 10x N':>11}")
    timed: dict[int, float] = {}  # evaluator-metric seconds by N, in the order timed
    for n in counts:
        scorer = Scorer(EvalSettings(num_samples=n), dd, "cpu")
        scorer.reference(None)  # cached reference features, as in a run after the first job
        images = train.images[:n]
        t0 = time.perf_counter()
        run_extractor(scorer.extractor, images, scorer.settings.batch_size)
        feat_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        row = scorer.score_images(images, None, None)
        total = time.perf_counter() - t0
        growth = ""
        if timed:
            prev_n, prev_s = list(timed.items())[-1]
            growth = f"{(total / prev_s) ** (1 / math.log10(n / prev_n)):.1f}"
        timed[n] = total
        click.echo(f"{n:>7} {feat_s:>10.1f} {total - feat_s:>10.1f} {total:>8.1f} {growth:>11}"
                   f"   FID(fmnist) {row['metrics']['fid_fmnist']:.3f}")  # fmt: skip
    if cas_counts:
        at = 10_000 if 10_000 in timed else max(timed)  # the quick profile's N where timed
        _time_cas(train, test, cas_counts, (at, timed[at]))  # the test split loaded above


def _time_inception_batches(extractor: Any, x: Any, batches: list[int]) -> None:
    """Inception img/s at each batch size (channels-last) and each one's max pool3
    difference from the first batch size's features, in one sitting."""
    from metrics.suite import extract

    first: Any = None
    for b in batches:
        extract(extractor, x[:b], b)  # warm-up: oneDNN picks its kernels per shape
        t0 = time.perf_counter()
        feats = extract(extractor, x, b)["2048"]
        dt = time.perf_counter() - t0
        first = feats if first is None else first
        diff = (feats - first).abs().max().item()
        click.echo(f"inception channels_last batch {b:>4} {len(x) / dt:7.1f} img/s  "
                   f"max |pool3 - batch {batches[0]}'s| = {diff:.2e}")  # fmt: skip


def _counts(text: str, option: str, allow_empty: bool, low: int = 2) -> list[int]:
    """Comma-separated counts between ``low`` and 60,000, or a clear usage error."""
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = [0]
    bad = counts and (min(counts) < low or max(counts) > 60_000)
    if (not counts and not allow_empty) or bad:
        raise click.BadParameter(f"give counts between {low} and 60000, e.g. 1000,10000,50000",
                                 param_hint=option)  # fmt: skip
    return counts


def _time_cas(train: Any, test: Any, counts: list[int], evaluator: tuple[int, float]) -> None:
    """Time CAS's classifier at each training-set size: the cost ``cas`` adds to a
    conditional job (``cas_real`` costs as much again, once per run and class set)."""
    from metrics.cas import train_and_test
    from metrics.family import EvalSettings

    epochs = EvalSettings(num_samples=0).cas_epochs  # the profiles' default
    click.echo(f"CAS classifier ({epochs} epochs; N labelled training images, tested on "
               f"{len(test.images)} test images):")  # fmt: skip
    click.echo(f"{'N':>7} {'seconds':>8} {'accuracy':>9} {'vs evaluator metrics':>21}")
    for n in counts:
        t0 = time.perf_counter()
        acc = train_and_test(train.images[:n], train.labels[:n], test.images, test.labels,
                             tuple(range(10)), epochs, seed=0)  # fmt: skip
        dt = time.perf_counter() - t0
        ratio = f"{dt / evaluator[1]:.2f}x at N={evaluator[0]}"
        click.echo(f"{n:>7} {dt:>8.1f} {acc:>9.4f} {ratio:>21}")
