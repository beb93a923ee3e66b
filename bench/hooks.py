"""The training loop's hooks: everything beside the optimisation steps.

:class:`~bench.training.Hook` is the interface the loop (:mod:`bench.harness`) calls and
:class:`~bench.training.TrainingState` what a hook sees of it; the built-in hooks
write the loss log, the fixed-noise sample grids and the progress bar; :class:`MetricTracker`
scores G_ema during training (the metric-versus-kimg curve); :class:`TensorBoardLog` writes
all of these as TensorBoard events when the optional package is installed. The loop calls
every hook with training's RNG streams set aside, so a hook may draw random numbers freely.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from bench.runs import TRACKED_COLUMNS
from bench.scoring import Scorer
from bench.training import Hook, TrainingState
from metrics.common import CLASS_NAMES, atomic_path
from metrics.evaluator import EvaluatorUnavailable
from metrics.family import MetricInputError
from metrics.suite import generate
from models.registry import Variant


def rows_through(path: Path, step: int) -> list[dict[str, str]]:
    """The rows of a per-step CSV log up to ``step`` (a resumed job drops the rest, which
    the resumed run writes again); none for a fresh job or a missing file."""
    if step == 0 or not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if int(r["step"]) <= step]


def write_csv(path: Path, columns: list[str] | tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Write a CSV log (header and ``rows``) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


class LossLog(Hook):
    """Per-step losses to ``losses.csv``; rows past a resumed checkpoint are dropped."""

    FILE = "losses.csv"

    def on_start(self, trainer: TrainingState) -> None:
        self.path = trainer.out_dir / self.FILE
        self.columns = ["step", "kimg", "d_loss", "g_loss", *trainer.loss.stat_names]
        self.rows: list[dict[str, Any]] = []
        write_csv(self.path, self.columns, rows_through(self.path, trainer.step))

    def on_stats(self, trainer: TrainingState, rows: list[dict[str, float]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= 200:
            self.flush()

    def flush(self) -> None:
        """Append buffered rows."""
        if not self.rows:
            return
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore").writerows(self.rows)
        self.rows = []

    def before_checkpoint(self, trainer: TrainingState) -> None:
        self.flush()

    def on_end(self, trainer: TrainingState) -> None:
        self.flush()


class GridSaver(Hook):
    """Fixed-noise G_ema grids every ``grid_kimg`` (grids/step*.png) and grid-final.png."""

    FINAL = "grid-final.png"

    def __init__(self) -> None:
        self.last: tuple[int, torch.Tensor] | None = None  # (step, grid) of the newest grid

    def on_start(self, trainer: TrainingState) -> None:
        self.every = trainer.every(trainer.settings.grid_kimg)
        if trainer.step == 0:
            self._save(trainer, trainer.out_dir / "grids" / "step0000000-kimg0.0.png")

    def after_step(self, trainer: TrainingState) -> None:
        if trainer.step % self.every == 0 or trainer.step == trainer.total_steps:
            name = f"step{trainer.step:07d}-kimg{trainer.kimg:.1f}.png"
            self._save(trainer, trainer.out_dir / "grids" / name)

    def on_end(self, trainer: TrainingState) -> None:
        if trainer.step == trainer.total_steps:
            self._save(trainer, trainer.out_dir / self.FINAL)

    def _save(self, trainer: TrainingState, path: Path) -> None:
        import torchvision.utils as vutils  # deferred: importing torchvision costs ~5 s

        if self.last is not None and self.last[0] == trainer.step:
            grid = self.last[1]  # the final grid is the last periodic one
        else:
            images, nrow = trainer.sample_grid()
            grid = vutils.make_grid(images, nrow=nrow, padding=2, pad_value=1.0)
            self.last = (trainer.step, grid)
        names = None
        if trainer.variant.conditional:  # one row per class, in class order, named
            names = [CLASS_NAMES[c] for c in trainer.variant.data.class_ids]
        with atomic_path(path) as tmp:
            label_rows(grid, names).save(tmp, format="png")


def label_rows(grid: torch.Tensor, names: list[str] | None) -> Image.Image:
    """The grid (C, H, W in [0, 1]) as a PIL image, with ``names`` written left of its rows."""
    arr = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr).convert("RGB")
    if not names:
        return img
    font = ImageFont.load_default()
    margin = 8 + max(int(ImageDraw.Draw(img).textlength(n, font=font)) for n in names)
    out = Image.new("RGB", (img.width + margin, img.height), "white")
    out.paste(img, (margin, 0))
    draw, row_h = ImageDraw.Draw(out), img.height / len(names)
    for i, name in enumerate(names):
        draw.text((4, int(row_h * (i + 0.5)) - 6), name, fill="black", font=font)
    return out


class ProgressBar(Hook):
    """tqdm bar in kimg with img/s and current losses; silent when stderr is not a terminal."""

    def on_start(self, trainer: TrainingState) -> None:
        s = trainer.settings
        self.bar = tqdm(
            total=round(trainer.total_steps * trainer.images_per_step / 1000, 3),
            initial=round(trainer.kimg, 3),
            unit="kimg",
            desc=f"{trainer.variant.name} s{s.seed}",
            disable=None if s.progress is None else not s.progress,
            dynamic_ncols=True,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} kimg "
            "[{elapsed}<{remaining}, {postfix}]",
        )
        self._t, self._k = time.perf_counter(), trainer.kimg

    def after_step(self, trainer: TrainingState) -> None:
        self.bar.update(trainer.images_per_step / 1000)

    def on_stats(self, trainer: TrainingState, rows: list[dict[str, float]]) -> None:
        now = time.perf_counter()
        if rows and now - self._t >= 1.0:
            rate = (trainer.kimg - self._k) * 1000 / (now - self._t)
            self._t, self._k = now, trainer.kimg
            last = rows[-1]
            self.bar.set_postfix_str(
                f"{rate:.0f} img/s, D {last['d_loss']:.3f}, G {last['g_loss']:.3f}", refresh=False
            )

    def on_end(self, trainer: TrainingState) -> None:
        self.bar.close()


class MetricTracker(Hook):
    """FID(fmnist) and IS(fmnist) of G_ema every ``every_kimg`` during training, into
    ``tracked.csv`` (the metric-versus-kimg curve of the report).

    Every point scores the same ``samples`` latents (the metric seed) against the full test
    split, so points differ only by the generator. Tracking time is outside training time
    (hooks run between timed steps) and never draws from the training RNG streams. A resumed
    job drops rows past its checkpoint, as the loss log does. When the evaluator is
    unavailable, tracking stops quietly and the reason is kept in :attr:`error`.
    """

    FILE = "tracked.csv"
    COLUMNS = TRACKED_COLUMNS

    def __init__(self, scorer: Scorer, variant: Variant, every_kimg: float, samples: int) -> None:
        self.scorer, self.variant = scorer, variant
        self.every_kimg, self.samples = every_kimg, samples
        self.error: str | None = None
        self.rows: list[dict[str, Any]] = []

    def on_start(self, trainer: TrainingState) -> None:
        self.path = trainer.out_dir / self.FILE
        self.every = trainer.every(self.every_kimg)
        self.rows = rows_through(self.path, trainer.step)
        write_csv(self.path, self.COLUMNS, self.rows)
        if trainer.step == 0:
            self._measure(trainer)

    def after_step(self, trainer: TrainingState) -> None:
        if trainer.step % self.every == 0 or trainer.step == trainer.total_steps:
            self._measure(trainer)

    def description(self) -> dict[str, Any]:
        """What the tracked points mean (kept in the row)."""
        return {
            "file": self.FILE,
            "metrics": list(self.COLUMNS[2:]),
            "every_kimg": self.every_kimg,
            "samples": self.samples,
            "reference": "test split, restricted to the variant's classes",
            "metric_seed": self.scorer.settings.metric_seed,
            **({"error": self.error} if self.error else {}),
        }

    def _measure(self, trainer: TrainingState) -> None:
        if self.error is not None:
            return
        try:
            images, _ = generate(
                trainer.G_ema, self.variant, self.samples, self.scorer.settings.metric_seed,
                trainer.device,
            )  # fmt: skip
            data = self.variant.data
            values = self.scorer.quick_metrics(images, data.classes, data.resolution)
        except (EvaluatorUnavailable, MetricInputError) as exc:
            self.error = str(exc)
            return
        self.rows.append({"step": trainer.step, "kimg": round(trainer.kimg, 4), **values})
        write_csv(self.path, self.COLUMNS, self.rows)


def summary_writer_class() -> Any:
    """torch's TensorBoard ``SummaryWriter`` when the optional ``tensorboard`` package is
    installed (``.[tensorboard]``), else None: then nothing is logged and nothing warns."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class TensorBoardLog(Hook):
    """TensorBoard event files in the job's ``tensorboard/`` folder, stylegan2-ada's way: the
    losses and loss statistics of every step (``loss/*``), the tracked metrics
    (``metrics/fid_fmnist``, ``metrics/is_fmnist``) and the sample grids (``samples``), all
    against the images shown to D (so kimg = step / 1000 on TensorBoard's axis).

    A resumed job opens its writer with ``purge_step`` just past the checkpoint, so what a
    killed session wrote after its last checkpoint is hidden and the curves do not double;
    everything up to a checkpoint is flushed before it is written. Runs last among the hooks,
    so it sees the grid and the tracked point of the same step.
    """

    DIR = "tensorboard"

    def __init__(self) -> None:
        self.writer: Any = None

    def on_start(self, trainer: TrainingState) -> None:
        writer_class = summary_writer_class()
        if writer_class is None:
            return
        now = self._nimg(trainer, trainer.step)
        self.writer = writer_class(
            log_dir=str(trainer.out_dir / self.DIR), purge_step=now + 1 if trainer.step else None
        )
        self.grids = next((h for h in trainer.hooks if isinstance(h, GridSaver)), None)
        self.tracker = next((h for h in trainer.hooks if isinstance(h, MetricTracker)), None)
        # Tracked points up to the checkpoint were logged by the session that made it.
        self.sent = 0 if trainer.step == 0 or self.tracker is None else len(self.tracker.rows)
        self.grid_step = -1  # the step of the last grid logged
        self.after_step(trainer)

    @staticmethod
    def _nimg(trainer: TrainingState, step: int) -> int:
        return step * trainer.images_per_step

    def on_stats(self, trainer: TrainingState, rows: list[dict[str, float]]) -> None:
        if self.writer is None:
            return
        for row in rows:
            nimg = self._nimg(trainer, int(row["step"]))
            for key, value in row.items():
                if key not in ("step", "kimg"):
                    self.writer.add_scalar(f"loss/{key}", value, nimg)

    def after_step(self, trainer: TrainingState) -> None:
        if self.writer is None:
            return
        if self.tracker is not None:
            for row in self.tracker.rows[self.sent :]:
                nimg = self._nimg(trainer, int(row["step"]))
                for key in MetricTracker.COLUMNS[2:]:
                    if row.get(key) is not None:
                        self.writer.add_scalar(f"metrics/{key}", row[key], nimg)
            self.sent = len(self.tracker.rows)
        last = self.grids.last if self.grids is not None else None
        if last is not None and last[0] != self.grid_step:
            self.writer.add_image("samples", last[1], self._nimg(trainer, last[0]))
            self.grid_step = last[0]

    def before_checkpoint(self, trainer: TrainingState) -> None:
        if self.writer is not None:
            self.writer.flush()

    def on_end(self, trainer: TrainingState) -> None:
        if self.writer is not None:
            self.after_step(trainer)
            self.writer.close()
            self.writer = None
