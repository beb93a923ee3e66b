"""``bench evaluator train``: retrain the shipped Fashion-MNIST evaluator."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.base import cli
from bench.cli.options import data_dir_option


@cli.group("evaluator")
def evaluator_group() -> None:
    """The Fashion-MNIST evaluator CNN behind the domain metrics (is_fmnist, fid_fmnist, ...)."""


@evaluator_group.command("train")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the weights (default: the package's metrics/weights/ file).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the recipe.")
@data_dir_option
def evaluator_train_cmd(out: Path | None, epochs: int | None, data_dir: Path | None) -> None:
    """Train the evaluator reproducibly (CPU, fp32, fixed seed) and write its weights.

    Prints per-epoch loss and training accuracy, then the test accuracy, the wall time and
    the sha256 of the weights file; the shipped file was made by this command with its
    defaults.
    """
    import dataclasses

    import torch

    from bench.data import load_part
    from metrics.evaluator import WEIGHTS_PATH, EvaluatorTraining, save_evaluator, train_evaluator
    from models.data_options import DataOptions

    cfg = EvaluatorTraining()
    if epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=epochs)
    dd = str(data_dir) if data_dir is not None else None
    train, test = load_part(DataOptions(), "train", dd), load_part(DataOptions(), "test", dd)
    torch.use_deterministic_algorithms(True)
    model, report = train_evaluator(
        train.images, train.labels, test.images, test.labels, cfg, log=click.echo
    )
    target = out if out is not None else WEIGHTS_PATH
    digest = save_evaluator(model, target)
    click.echo(
        f"test accuracy {report['test_accuracy']:.4f}, {report['seconds']:.0f} s, "
        f"{report['parameters']:,} parameters, {target.stat().st_size / 1e6:.2f} MB"
    )
    click.echo(f"sha256 {digest}  {target}")
