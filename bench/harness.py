"""One training loop for every variant.

Per iteration: ``loss.n_critic`` discriminator steps (each on a fresh real batch and fresh
noise), then one generator step, then the EMA update of ``G_ema``. What differs between GAN
recipes lives in the loss object (:mod:`models.losses`); everything else (budget in kimg,
EMA, checkpoints, precision, divergence, Ctrl-C) lives here, once. Side outputs (loss log,
sample grids, progress, metrics during training) are hooks (:mod:`bench.hooks`), so later
layers plug in without touching the loop.

Exact resume: a checkpoint holds G, D, G_ema, both optimisers, the step, every RNG state and
the config; the batch order is a pure function of (seed, batch index). Killing the process and
running the same command again therefore ends with the same weights, bit for bit on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.checkpoint import (
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from bench.data import Dataset, EpochSampler, to_model_range
from bench.errors import BenchError
from bench.fsutil import atomic_write_json
from bench.hooks import GridSaver, LossLog, ProgressBar, TensorBoardLog
from bench.provenance import cpu_model, versions
from bench.runs import PROGRESS
from bench.signals import stop_on_signal
from bench.training import Hook, TrainSettings
from models.augment import DiffAugmentD
from models.ema import ema_decay_at, update_ema
from models.layers import has_conv
from models.registry import Variant, count_parameters

CHECKPOINT_NAME = "checkpoint.pt"
GRID_SEED = 2017_08_25  # fixed noise for grids: the same latents at every interval and seed


@dataclass
class TrainResult:
    """What one training job produced (a job that diverges raises Diverged instead)."""

    step: int
    total_steps: int
    kimg: float
    train_seconds: float  # time inside training steps, over all sessions of this job
    # The process's CPU time inside those steps (all its threads): what the job costs in
    # CPU-hours whatever else shared the machine. None when an older checkpoint lacked it.
    train_cpu_seconds: float | None
    img_per_s: float  # real images per second of training-step time
    params_g: int
    params_d: int
    resumed_from_step: int | None
    train_cpus: list[str] = field(default_factory=list)  # CPU models of its sessions, in order
    paths: dict[str, str] = field(default_factory=dict)


class Diverged(Exception):
    """A loss became NaN or infinite; the variant stops and is recorded as ``diverged``."""

    def __init__(self, step: int, stats: dict[str, float]) -> None:
        super().__init__(f"non-finite loss at step {step}: {stats}")
        self.step, self.stats = step, stats


class Interrupted(Exception):
    """Ctrl-C / SIGTERM: a checkpoint was written and the job can be resumed.

    Attributes:
        step: the step the loop stopped (and checkpointed) at, when one loop stopped.
    """

    def __init__(self, message: str = "", step: int | None = None) -> None:
        super().__init__(message)
        self.step = step


# What every checkpoint of ours holds; a file without them is damaged or not ours.
CHECKPOINT_KEYS = ("config", "G", "D", "G_ema", "opt_g", "opt_d", "rng", "step", "train_seconds")
_RESTART = "delete it to train the job again from the start, or restore the file"


def images_per_step(variant: Variant) -> int:
    """Real images one training step shows D: a batch per critic step."""
    return variant.batch_size * variant.build_loss().n_critic


def steps_for_budget(kimg: float, per_step: int) -> int:
    """Training steps for a budget of ``kimg`` thousand real images: the first step count
    that reaches it (at least one). The one source of the count, for training and for the
    plans that `bench run --dry-run` prints."""
    return max(1, math.ceil(kimg * 1000 / per_step))


class Trainer:
    """Trains one variant with one seed into ``out_dir``; resumes from its checkpoint.

    Args:
        variant: the registered recipe.
        data: training images (uint8) and labels.
        settings: budget, seed, numerics.
        out_dir: job folder for checkpoint.pt, losses.csv and grids/.
        hooks: extra hooks after the built-in loss log, grids and progress bar (and
            before the TensorBoard log, which logs what they made in the same step).
    """

    def __init__(
        self,
        variant: Variant,
        data: Dataset,
        settings: TrainSettings,
        out_dir: str | Path,
        hooks: list[Hook] | None = None,
    ) -> None:
        self.variant, self.settings, self.out_dir = variant, settings, Path(out_dir)
        self.device = torch.device(settings.device)
        self.loss = variant.build_loss()
        self.G, self.D = variant.build(settings.seed)
        # What the loss calls: D itself, or D behind the variant's DiffAugment policy.
        self.D_view: nn.Module = (
            DiffAugmentD(self.D, variant.augment) if variant.augment else self.D
        )
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self._fmt = torch.channels_last if settings.channels_last and has_conv(self.G) else None
        for m in (self.G, self.D, self.G_ema):
            m.to(self.device)
            if settings.channels_last and has_conv(m):
                m.to(memory_format=torch.channels_last)
        o = variant.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=o.betas, eps=o.eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=o.betas, eps=o.eps)
        self.noise = torch.Generator(self.device).manual_seed(settings.seed)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.sampler = EpochSampler(len(data), variant.batch_size, settings.seed, self.device)
        self.images_per_step = images_per_step(variant)
        self.total_steps = steps_for_budget(settings.kimg, self.images_per_step)
        self.step = 0
        self.train_seconds = 0.0  # accumulated over sessions (restored on resume)
        self.session_seconds = 0.0  # training seconds in this process (pace to expect next)
        self._paced = (0, 0.0)  # (step, session_seconds) at this process's last checkpoint
        self.train_cpu_seconds: float | None = 0.0  # the same steps' process CPU time
        # The CPU model of every session that trained this job, in order (restored on resume):
        # a job may be resumed on another machine, and its row says which ones made it.
        self.cpus: list[str] = [cpu_model()]
        self.resumed_from_step: int | None = None
        self.hooks: list[Hook] = [
            LossLog(), GridSaver(), ProgressBar(), *(hooks or []), TensorBoardLog(),
        ]  # fmt: skip
        every = settings.sync_every
        self.sync_every = every if every is not None else (1 if self.device.type == "cpu" else 50)
        self._pending: list[tuple[int, float, dict[str, torch.Tensor]]] = []

    # ------------------------------------------------------------------ helpers
    @property
    def kimg(self) -> float:
        """Real images shown to D so far, in thousands."""
        return self.step * self.images_per_step / 1000

    @property
    def channels_last(self) -> bool:
        """Whether the models run channels-last (conv models with the setting on)."""
        return self._fmt is not None

    def session_img_per_s(self, since_checkpoint: bool = False) -> float | None:
        """Images/s of this process's training steps; None before one. ``since_checkpoint``:
        only the steps since its previous checkpoint, the pace to expect next (it follows a
        load that started or ended beside the job within one checkpoint interval)."""
        step, seconds = self._paced if since_checkpoint else (0, 0.0)
        steps = self.step - max(step, self.resumed_from_step or 0)
        seconds = self.session_seconds - seconds
        return steps * self.images_per_step / seconds if steps > 0 and seconds > 0 else None

    def every(self, interval_kimg: float) -> int:
        """An interval in kimg as a whole number of steps (at least 1)."""
        return max(1, round(interval_kimg * 1000 / self.images_per_step))

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.settings.precision == "bf16"
        )

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self._fmt) if self._fmt is not None else x

    def _generate(self, G: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self._layout(G(z) if y is None else G(z, y))

    def _call_hooks(self, method: str, *args: Any) -> None:
        """Call ``method`` on every hook with training's RNG streams set aside: whatever a
        hook draws (a network it builds, as the evaluator's first load does) must not move
        the draws of dropout, the gradient penalty or DiffAugment, or a job's weights would
        depend on what ran before it in the same process."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for h in self.hooks:
                getattr(h, method)(self, *args)

    # ------------------------------------------------------------------ one iteration
    def train_step(self) -> dict[str, torch.Tensor]:
        """One iteration: n_critic D steps, one G step, one EMA update.

        Returns the losses and loss statistics as 0-d tensors on the device, unread: reading
        them is :meth:`read_stats`'s job, batched, so a GPU is never waited for per step.
        """
        v, loss, n_critic = self.variant, self.loss, self.loss.n_critic
        cond = v.conditional
        stats: dict[str, torch.Tensor] = {}
        for k in range(n_critic):
            idx = self.sampler.indices(self.step * n_critic + k).to(self.device)
            real = self._layout(to_model_range(self.images[idx], v.data.value_range))
            y_real = self.labels[idx] if cond else None
            z, y_fake = v.sample_latents(v.batch_size, self.noise, self.device)
            with torch.no_grad(), self._autocast():
                fake = self._generate(self.G, z, y_fake)
            with self._autocast():
                d_loss, stats = loss.d_loss(self.D_view, real, fake, y_real, y_fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()

        z, y_fake = v.sample_latents(v.batch_size, self.noise, self.device)
        self.D.requires_grad_(False)  # G's step needs no gradients for D's weights
        try:
            with self._autocast():
                fake = self._generate(self.G, z, y_fake)
                g_loss, g_stats = loss.g_loss(self.D_view, fake, y_fake)
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        self.step += 1
        update_ema(self.G_ema, self.G, ema_decay_at(self.step, v.ema_decay, v.ema_rampup))
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **stats, **g_stats}

    def read_stats(self) -> list[dict[str, float]]:
        """The pending steps' statistics as rows, read back in one device-to-host copy."""
        if not self._pending:
            return []
        flat = [t.float() for _, _, st in self._pending for t in st.values()]
        values = iter(torch.stack(flat).tolist())
        rows = [
            {"step": step, "kimg": kimg, **{k: next(values) for k in st}}
            for step, kimg, st in self._pending
        ]
        self._pending = []
        return rows

    def publish_stats(self, rows: list[dict[str, float]]) -> None:
        """Hand ``rows`` to the hooks, up to the first non-finite one, which raises Diverged
        (the log ends on the step that broke)."""
        if not rows:
            return
        bad = next((i for i, r in enumerate(rows) if not all(map(math.isfinite, r.values()))), None)
        kept = rows if bad is None else rows[: bad + 1]
        self._call_hooks("on_stats", kept)
        if bad is not None:
            row = rows[bad]
            raise Diverged(int(row["step"]), {k: v for k, v in row.items() if k not in _INDEX})

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path:
        """Where this job's checkpoint lives."""
        return self.out_dir / CHECKPOINT_NAME

    def _config(self) -> dict[str, Any]:
        return {"variant": self.variant.to_dict(), "settings": self.settings.to_dict()}

    def save_checkpoint(self) -> None:
        """Write everything needed to continue bit-exactly (atomic), then the job's
        progress (:data:`bench.runs.PROGRESS`: step, kimg, training time so far)."""
        self._call_hooks("before_checkpoint")
        spent = {k: getattr(self, k) for k in ("train_seconds", "train_cpu_seconds", "cpus")}
        save_checkpoint(
            self.checkpoint_path,
            {
                "step": self.step,
                **spent,
                **{k: getattr(self, k).state_dict() for k in ("G", "D", "G_ema", "opt_g", "opt_d")},
                "rng": rng_state(self.device, self.noise),
                "config": self._config(),
                "versions": versions(),
            },
        )
        pace = self.session_img_per_s(since_checkpoint=True)  # the pace to expect next
        self._paced = (self.step, self.session_seconds)
        atomic_write_json(
            self.out_dir / PROGRESS,
            {"step": self.step, "total_steps": self.total_steps, "kimg": round(self.kimg, 4),
             **spent, "img_per_s": pace},
        )  # fmt: skip

    def resume(self) -> bool:
        """Load this job's checkpoint if there is one. Returns whether it resumed.

        Raises:
            RunFolderError: when the checkpoint was made with a different recipe or settings.
        """
        if not self.checkpoint_path.is_file():
            return False
        path = self.checkpoint_path
        state = load_checkpoint(path, self.device)
        missing = [k for k in CHECKPOINT_KEYS if k not in state]
        if missing:
            raise BenchError(f"{path}: damaged checkpoint, no {', '.join(missing)}; {_RESTART}")
        try:
            check_compatible(state["config"], self._config(), path)
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            set_rng_state(state["rng"], self.device, self.noise)
            self.step, self.train_seconds = int(state["step"]), float(state["train_seconds"])
            cpu_s = state.get("train_cpu_seconds")  # absent in older checkpoints: unknown
            self.train_cpu_seconds = None if cpu_s is None else float(cpu_s)
            cpus = [str(c) for c in state.get("cpus", [])]  # absent in older checkpoints
            self.cpus = cpus if cpus[-1:] == [cpu_model()] else [*cpus, cpu_model()]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise BenchError(
                f"{path}: its contents do not fit variant {self.variant.name!r} "
                f"({type(exc).__name__}: {first}); {_RESTART}"
            ) from None
        self.resumed_from_step = self.step
        return True

    # ------------------------------------------------------------------ the loop
    def train(self) -> TrainResult:
        """Run (or finish) the budget. Raises Diverged or Interrupted; otherwise returns."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.out_dir.rglob(".*.tmp"):  # a killed write's temporary file: ours
            stale.unlink(missing_ok=True)  # (the job's lock keeps every other writer out)
        self.resume()
        self._call_hooks("on_start")
        every_ckpt = self.every(self.settings.checkpoint_kimg)
        try:
            with stop_on_signal() as stop:
                while self.step < self.total_steps:
                    t0, c0 = time.perf_counter(), time.process_time()
                    stats = self.train_step()
                    self._pending.append((self.step, round(self.kimg, 4), stats))
                    # The read-back waits for the device: training time, not hook time.
                    rows = self.read_stats() if len(self._pending) >= self.sync_every else []
                    dt = time.perf_counter() - t0
                    self.train_seconds += dt
                    if self.train_cpu_seconds is not None:
                        self.train_cpu_seconds += time.process_time() - c0
                    self.session_seconds += dt
                    self.publish_stats(rows)
                    self._call_hooks("after_step")
                    if self.step % every_ckpt == 0 or self.step == self.total_steps:
                        self.publish_stats(self.read_stats())  # no checkpoint of NaN weights
                        self.save_checkpoint()
                    if stop.is_set() and self.step < self.total_steps:
                        if self.step % every_ckpt:
                            self.publish_stats(self.read_stats())
                            self.save_checkpoint()
                        raise Interrupted(
                            f"stopped at step {self.step}/{self.total_steps}; checkpoint saved",
                            step=self.step,
                        )
        finally:
            self._call_hooks("on_end")
        whole = self.step * self.images_per_step / self.train_seconds if self.train_seconds else 0.0
        rate = self.session_img_per_s() or whole
        return TrainResult(
            step=self.step,
            total_steps=self.total_steps,
            kimg=self.kimg,
            train_seconds=self.train_seconds,
            train_cpu_seconds=self.train_cpu_seconds,
            img_per_s=rate,
            params_g=count_parameters(self.G),
            params_d=count_parameters(self.D),
            resumed_from_step=self.resumed_from_step,
            train_cpus=list(self.cpus),
            paths={
                "checkpoint": str(self.checkpoint_path),
                "losses": str(self.out_dir / LossLog.FILE),
                "grid": str(self.out_dir / GridSaver.FINAL),
            },
        )

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """G_ema samples on fixed noise in eval mode: 8x8, or one row of 8 per class.

        Returns the images in [0, 1] and the number of images per row.
        """
        v = self.variant
        g = torch.Generator().manual_seed(GRID_SEED)
        if v.conditional:
            ids = v.data.class_ids
            z = torch.randn(8, v.z_dim, generator=g).repeat(len(ids), 1)
            y = torch.tensor(ids).repeat_interleave(8).to(self.device)
        else:
            z, y = torch.randn(64, v.z_dim, generator=g), None
        x = self._generate(self.G_ema, z.to(self.device), y).float().cpu()
        lo, hi = v.data.value_range
        return ((x - lo) / (hi - lo)).clamp(0, 1), 8


_INDEX = ("step", "kimg")  # the columns of a stats row that are not statistics
