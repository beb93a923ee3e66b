"""Training harness: determinism, exact resume (also after SIGKILL), Ctrl-C, divergence, EMA."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench import data as data_mod
from bench.checkpoint import load_checkpoint, save_checkpoint
from bench.cli import cli
from bench.errors import RunFolderError
from bench.executor import execute
from bench.harness import Diverged, Interrupted, Trainer, TrainSettings
from bench.jobs import RunPlan
from bench.profiles import get_profile
from bench.runs import RunFolder
from bench.training import Hook
from models import registry
from models.data_options import DataOptions
from models.ema import ema_decay_at, update_ema
from models.losses import _LOSSES, NonSaturatingBCE
from models.registry import get_variant
from tests.conftest import bench_process

DCGAN = get_variant("dcgan")
STEP_KIMG = DCGAN.batch_size / 1000  # one dcgan iteration


def settings(steps: int, **kw) -> TrainSettings:
    base = {"kimg": steps * STEP_KIMG, "progress": False, "checkpoint_kimg": 2 * STEP_KIMG}
    return TrainSettings(**{**base, **kw})


@pytest.fixture
def train_data(synthetic_dir: Path) -> data_mod.Dataset:
    return data_mod.load_part(DataOptions(), "train", synthetic_dir)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_first_steps_are_deterministic(train_data, tmp_path: Path) -> None:
    runs = []
    for sub in ("a", "b"):
        tr = Trainer(DCGAN, train_data, settings(3), tmp_path / sub)
        runs.append([_floats(tr.train_step()) for _ in range(3)])
    assert runs[0] == runs[1]
    other = Trainer(DCGAN, train_data, settings(3, seed=1), tmp_path / "c")
    assert [_floats(other.train_step()) for _ in range(3)] != runs[0]


def _floats(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in stats.items()}


def test_budget_in_kimg_and_outputs(train_data, tmp_path: Path) -> None:
    tr = Trainer(DCGAN, train_data, settings(5, kimg=0.6), tmp_path)
    result = tr.train()
    assert result.step == 5 == result.total_steps  # ceil(600/128)
    assert result.kimg == pytest.approx(0.64)
    assert result.img_per_s > 0 and result.params_g == 837_504
    rows = read_csv(tmp_path / "losses.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= rows[0].keys()
    assert (tmp_path / "grid-final.png").is_file()
    assert (tmp_path / "grids" / "step0000000-kimg0.0.png").is_file()
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 5 and ckpt["config"]["variant"]["name"] == "dcgan"
    assert {"G", "D", "G_ema", "opt_g", "opt_d", "rng", "versions"} <= ckpt.keys()
    assert not tr.G_ema.training  # samples and metrics come from G_ema in eval mode


def test_resume_in_process_is_exact(train_data, tmp_path: Path) -> None:
    straight = Trainer(DCGAN, train_data, settings(6), tmp_path / "straight")
    straight.train()
    Trainer(DCGAN, train_data, settings(4), tmp_path / "split").train()  # stops at step 4
    resumed = Trainer(DCGAN, train_data, settings(6), tmp_path / "split")
    result = resumed.train()
    assert result.resumed_from_step == 4
    for attr in ("G", "D", "G_ema"):
        assert states_equal(
            getattr(straight, attr).state_dict(), getattr(resumed, attr).state_dict()
        )
    a = (tmp_path / "straight" / "losses.csv").read_text()
    assert a == (tmp_path / "split" / "losses.csv").read_text()


def test_a_job_resumed_on_another_cpu_names_both(
    train_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job trained in sessions on two machines stays valid and its result names both CPU
    models in order; a session on the same machine adds nothing."""
    import bench.harness as harness

    monkeypatch.setattr(harness, "cpu_model", lambda: "CPU A")
    assert Trainer(DCGAN, train_data, settings(2), tmp_path).train().train_cpus == ["CPU A"]
    assert Trainer(DCGAN, train_data, settings(3), tmp_path).train().train_cpus == ["CPU A"]
    monkeypatch.setattr(harness, "cpu_model", lambda: "CPU B")
    result = Trainer(DCGAN, train_data, settings(4), tmp_path).train()
    assert result.train_cpus == ["CPU A", "CPU B"] and result.resumed_from_step == 3


def test_cpu_time_of_the_steps_adds_up_over_sessions(
    train_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train_cpu_seconds is the process CPU time inside the training steps, accumulated over
    the sessions of a job (checkpointed like train_seconds); a checkpoint written before the
    field existed resumes with it unknown (None) rather than a partial sum."""
    import bench.harness as harness

    clock = iter(range(0, 10_000, 7))  # each process_time() call: 7 CPU seconds later
    monkeypatch.setattr(harness.time, "process_time", lambda: float(next(clock)))
    first = Trainer(DCGAN, train_data, settings(2), tmp_path / "a").train()
    assert first.train_cpu_seconds == 2 * 7.0  # two steps, 7 s each
    assert load_checkpoint(tmp_path / "a" / "checkpoint.pt")["train_cpu_seconds"] == 14.0
    second = Trainer(DCGAN, train_data, settings(3), tmp_path / "a").train()
    assert second.resumed_from_step == 2 and second.train_cpu_seconds == 3 * 7.0
    monkeypatch.undo()
    Trainer(DCGAN, train_data, settings(2), tmp_path / "old").train()
    path = tmp_path / "old" / "checkpoint.pt"
    state = load_checkpoint(path)
    del state["train_cpu_seconds"]
    save_checkpoint(path, state)  # as an older version wrote it
    resumed = Trainer(DCGAN, train_data, settings(3), tmp_path / "old").train()
    assert resumed.resumed_from_step == 2 and resumed.train_cpu_seconds is None


def test_progress_gives_the_pace_of_the_last_checkpoint_interval(
    train_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """progress.json's img_per_s (what `bench status` expects next) is the pace since the
    process's previous checkpoint, so a load that starts beside a job shows at its next
    checkpoint; the row keeps the process's whole pace. Steps 1-4 take 1 s, later ones 3 s."""
    import bench.harness as harness

    trainer = Trainer(DCGAN, train_data, settings(6), tmp_path)  # a checkpoint every 2 steps

    def clock() -> float:  # seconds at the trainer's current step
        return float(min(trainer.step, 4) + 3 * max(trainer.step - 4, 0))

    monkeypatch.setattr(harness.time, "perf_counter", clock)
    result = trainer.train()
    batch = DCGAN.batch_size
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["img_per_s"] == pytest.approx(2 * batch / 6)  # steps 5-6
    assert result.img_per_s == pytest.approx(6 * batch / 10)  # the process's 6 steps
    resumed = Trainer(DCGAN, train_data, settings(7), tmp_path)
    trainer = resumed  # the clock follows the resumed trainer: step 7 takes 3 s
    resumed.train()
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["step"] == 7 and progress["img_per_s"] == pytest.approx(batch / 3)


def test_resume_refuses_a_different_configuration(train_data, tmp_path: Path) -> None:
    Trainer(DCGAN, train_data, settings(2), tmp_path).train()
    with pytest.raises(RunFolderError, match=r"settings\.seed"):
        Trainer(DCGAN, train_data, settings(4, seed=9), tmp_path).train()
    other = dataclasses.replace(DCGAN, batch_size=64)
    with pytest.raises(RunFolderError, match="batch_size"):
        Trainer(other, train_data, settings(4), tmp_path).train()


class SigintAt(Hook):
    """Sends this process SIGINT after a given step, as a user's Ctrl-C would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, trainer) -> None:
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_checkpoints_and_resumes_exactly(train_data, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when CI runs in a background job
    straight = Trainer(DCGAN, train_data, settings(6), tmp_path / "straight")
    straight.train()
    tr = Trainer(DCGAN, train_data, settings(6), tmp_path / "int", hooks=[SigintAt(3)])
    with pytest.raises(Interrupted, match="step 3/6"):
        tr.train()
    assert load_checkpoint(tmp_path / "int" / "checkpoint.pt")["step"] == 3  # off-interval save
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    resumed = Trainer(DCGAN, train_data, settings(6), tmp_path / "int")
    resumed.train()
    assert states_equal(straight.G_ema.state_dict(), resumed.G_ema.state_dict())


class SigtermAtEnd(Hook):
    """Sends this process SIGTERM during the last step, when no step is left to stop."""

    def after_step(self, trainer) -> None:
        if trainer.step == trainer.total_steps:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_in_the_last_step_reaches_the_caller(train_data, tmp_path: Path) -> None:
    """The job finishes (nothing is left to stop), then the caller's own SIGTERM handler
    runs: the signal is not swallowed by the trainer's handler."""
    got: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        result = Trainer(DCGAN, train_data, settings(3), tmp_path, hooks=[SigtermAtEnd()]).train()
    finally:
        signal.signal(signal.SIGTERM, before)
    assert result.step == 3 and got == [signal.SIGTERM]


def test_ctrl_c_stops_the_whole_run_and_resumes(
    synthetic_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C inside one job: no row, no later job started, checkpoint kept; a rerun resumes."""
    plan = RunPlan(
        profile=get_profile("smoke"),
        variants=("dcgan", "dcgan-small"),
        seeds=(0,),
        kimg=6 * STEP_KIMG,
        data_dir=str(synthetic_dir),
        progress=False,
    )
    run = RunFolder(tmp_path / "run")
    original = Trainer.__init__

    def with_sigint(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.hooks.append(SigintAt(3))

    monkeypatch.setattr(Trainer, "__init__", with_sigint)
    with pytest.raises(Interrupted):
        execute(plan, run, echo=lambda s: None, argv=["test"])
    assert run.results() == []
    assert not run.job_dir("dcgan-small", 0).exists()
    assert load_checkpoint(run.job_dir("dcgan", 0) / "checkpoint.pt")["step"] == 3
    monkeypatch.setattr(Trainer, "__init__", original)
    rows = execute(plan, run, echo=lambda s: None, argv=["test"])
    assert [(r["variant"], r["status"], r["resumed_from_step"]) for r in rows] == [
        ("dcgan", "ok", 3),
        ("dcgan-small", "ok", None),
    ]
    assert oct((run.job_dir("dcgan", 0) / "checkpoint.pt").stat().st_mode & 0o777) != "0o600"


class NaNAfter(NonSaturatingBCE):
    """BCE whose D loss turns NaN at the third call: a stand-in for a blown-up run."""

    calls = 0

    def d_loss(self, D, real, fake, yr, yf):
        loss, stats = super().d_loss(D, real, fake, yr, yf)
        type(self).calls += 1
        return (loss * float("nan") if type(self).calls >= 3 else loss), stats


@pytest.fixture
def nan_variant(monkeypatch):
    monkeypatch.setitem(_LOSSES, "nan-test", NaNAfter)
    NaNAfter.calls = 0
    v = dataclasses.replace(DCGAN, loss="nan-test", name="nan-test")
    monkeypatch.setitem(registry._VARIANTS, "nan-test", v)
    return v


class Broken(nn.Module):
    def __init__(self, arch) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, z, labels=None):
        raise RuntimeError("generator exploded")


def test_divergence_stops_cleanly(nan_variant, train_data, tmp_path: Path) -> None:
    tr = Trainer(nan_variant, train_data, settings(6), tmp_path)
    with pytest.raises(Diverged) as err:
        tr.train()
    assert err.value.step == 3
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2  # no NaN weights saved
    rows = read_csv(tmp_path / "losses.csv")
    assert rows[-1]["d_loss"] == "nan"  # the log shows what happened


def test_deferred_stats_read_back_changes_nothing(nan_variant, train_data, tmp_path: Path) -> None:
    """Reading the statistics back every 5 steps (as on a GPU) logs the same rows and trains
    the same weights as every step; a NaN is still caught before any checkpoint."""
    every = {}
    for k in (1, 5):
        tr = Trainer(DCGAN, train_data, settings(7, sync_every=k), tmp_path / f"k{k}")
        tr.train()
        every[k] = tr
    assert (tmp_path / "k1" / "losses.csv").read_text() == (
        tmp_path / "k5" / "losses.csv"
    ).read_text()
    assert states_equal(every[1].G_ema.state_dict(), every[5].G_ema.state_dict())

    tr = Trainer(nan_variant, train_data, settings(9, sync_every=8), tmp_path / "nan")
    with pytest.raises(Diverged) as err:
        tr.train()
    assert err.value.step == 3  # the first broken step, found at the step-4 checkpoint
    assert load_checkpoint(tmp_path / "nan" / "checkpoint.pt")["step"] == 2
    rows = read_csv(tmp_path / "nan" / "losses.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"] and rows[-1]["d_loss"] == "nan"


def test_run_continues_after_diverged_and_failed_variants(
    nan_variant, synthetic_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(
        registry._VARIANTS, "broken", dataclasses.replace(DCGAN, build_generator=Broken, name="b")
    )
    plan = RunPlan(
        profile=get_profile("smoke"),
        variants=("nan-test", "broken", "dcgan"),
        seeds=(0,),
        kimg=4 * STEP_KIMG,
        data_dir=str(synthetic_dir),
        progress=False,
    )
    run = RunFolder(tmp_path / "run")
    rows = execute(plan, run, echo=lambda s: None, argv=["test"])
    assert [r["status"] for r in rows] == ["diverged", "failed", "ok"]
    assert "generator exploded" in rows[1]["error"]
    assert "generator exploded" in (run.job_dir("broken", 0) / "error.log").read_text()
    # A rerun skips the finished (ok, diverged) jobs and retries the failed one.
    again = execute(plan, run, echo=lambda s: None, argv=["test"])
    assert [(r["variant"], r["status"]) for r in again] == [("broken", "failed")]
    assert len(run.results()) == 4


class DrawsInHooks(Hook):
    """A hook that draws from the global RNG (as building a network does) at every call."""

    def on_start(self, trainer) -> None:
        torch.randn(1000)

    def after_step(self, trainer) -> None:
        torch.rand(10)


@pytest.mark.parametrize("name", ["wgan-gp", "sngan-ema-diffaug"])
def test_hooks_never_move_the_training_draws(name: str, tmp_path: Path) -> None:
    """Dropout, the gradient penalty and DiffAugment draw from torch's global RNG; a hook
    drawing from it too must not change the trained weights (it did: a job's weights
    depended on whether the evaluator had been loaded in the process before it)."""
    v = get_variant(name)
    per_step = v.batch_size * v.build_loss().n_critic / 1000
    data = data_mod.random_dataset(v.batch_size * v.build_loss().n_critic * 2, 28, v.data.class_ids)
    cfg = TrainSettings(kimg=3 * per_step, progress=False, checkpoint_kimg=per_step)
    plain = Trainer(v, data, cfg, tmp_path / "plain")
    plain.train()
    drawing = Trainer(v, data, cfg, tmp_path / "drawing", hooks=[DrawsInHooks()])
    drawing.train()
    assert states_equal(plain.G.state_dict(), drawing.G.state_dict())
    assert states_equal(plain.D.state_dict(), drawing.D.state_dict())


def test_update_ema() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    before = a.weight.detach().clone()
    update_ema(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)


def test_ema_decay_schedules() -> None:
    """TF warm-up without a ramp; with StyleGAN2-ADA's ramp the half-life is rampup * t
    steps until the decay's own half-life caps it."""
    assert ema_decay_at(1, 0.999) == pytest.approx(2 / 11)
    assert ema_decay_at(10_000, 0.999) == 0.999
    r = 0.02
    assert ema_decay_at(1, 0.999, r) < 1e-15  # G_ema starts as G
    for t in (100, 500, 937):
        half_life = math.log(0.5) / math.log(ema_decay_at(t, 0.999, r))
        assert half_life == pytest.approx(r * t)
    assert ema_decay_at(10**6, 0.999, r) == 0.999  # the cap: half-life ~693 steps
    assert ema_decay_at(500, 0.0, r) == 0.0  # decay 0: G_ema is G, ramp or not
    ramp = [ema_decay_at(t, 0.999, r) for t in range(1, 3000)]
    assert ramp == sorted(ramp)


def test_ema_rampup_shortens_the_average(train_data, tmp_path: Path) -> None:
    """The variant's ema_rampup reaches the loop: after 8 steps with r = 0.05 the ramp's
    decay is ~0.18 against the warm-up's 0.5, so G_ema sits closer to G."""
    dist = {}
    for name, r in (("warmup", None), ("ramp", 0.05)):
        v = dataclasses.replace(DCGAN, ema_rampup=r)
        tr = Trainer(v, train_data, settings(8), tmp_path / name)
        tr.train()
        dist[name] = sum(
            float((a.detach() - b.detach()).pow(2).sum())
            for a, b in zip(tr.G_ema.parameters(), tr.G.parameters(), strict=True)
        )
    assert dist["ramp"] < dist["warmup"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_autocast_trains(train_data, tmp_path: Path, precision: str) -> None:
    """Under bf16 the convolutions of G and D compute in bfloat16 (autocast is on), while
    the master weights stay fp32; under fp32 nothing is cast."""
    tr = Trainer(DCGAN, train_data, settings(2, precision=precision), tmp_path)
    seen: set[torch.dtype] = set()
    for net in (tr.G, tr.D):
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                m.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    tr.train()
    assert seen == ({torch.bfloat16} if precision == "bf16" else {torch.float32})
    assert all(p.dtype == torch.float32 for p in tr.G.parameters())  # master weights stay fp32


def test_sigkill_then_same_command_resumes_to_identical_weights(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """Kill `bench train` with SIGKILL mid-run; the same command finishes the job, and the
    final weights, optimiser states and loss log equal those of an uninterrupted run."""
    common = ["train", "dcgan", "--profile", "smoke", "--kimg", str(24 * STEP_KIMG), "--seed", "0"]
    common += ["--data-dir", str(synthetic_dir), "--device", "cpu", "--no-progress"]
    # smoke checkpoints every 0.5 kimg = 4 steps of dcgan, so 24 steps leave time to kill.

    killed_dir = tmp_path / "killed"
    proc = bench_process(*common, "--out", str(killed_dir))
    ckpt = killed_dir / "dcgan" / "seed0" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # A second process on the same folder is refused while the first one holds it.
    second = CliRunner().invoke(cli, [*common, "--out", str(killed_dir)])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert second.exit_code == 2 and "in use by another bench process" in second.output
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 24
    assert not (killed_dir / "results.jsonl").exists()  # no row for an unfinished job

    resumed = bench_process(*common, "--out", str(killed_dir))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"resumed at step {killed_at}" in out

    straight = bench_process(*common, "--out", str(tmp_path / "straight"))
    out2, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out2

    a = load_checkpoint(tmp_path / "straight" / "dcgan" / "seed0" / "checkpoint.pt")
    b = load_checkpoint(ckpt)
    assert a["step"] == b["step"] == 24
    for key in ("G", "D", "G_ema"):
        assert states_equal(a[key], b[key]), key
    for key in ("opt_g", "opt_d"):
        sa, sb = a[key]["state"], b[key]["state"]
        assert all(states_equal(sa[i], sb[i]) for i in sa)
    la = (tmp_path / "straight" / "dcgan" / "seed0" / "losses.csv").read_text()
    lb = (killed_dir / "dcgan" / "seed0" / "losses.csv").read_text()
    assert la == lb  # rows past the checkpoint were dropped and re-logged identically
    row = json.loads((killed_dir / "results.jsonl").read_text().splitlines()[-1])
    assert row["status"] == "ok" and row["resumed_from_step"] == killed_at


@pytest.mark.parametrize("name", ["wgan-gp", "cgan-mlp-2class", "sngan-ema-diffaug"])
def test_exact_resume_across_mechanisms(name: str, tmp_path: Path) -> None:
    """Dropout + gradient penalty, conditional labels, DiffAugment's draws and spectral
    norm's power-iteration vectors all resume bit-exactly."""
    v = get_variant(name)
    per_step = v.batch_size * v.build_loss().n_critic / 1000
    data = data_mod.random_dataset(v.batch_size * v.build_loss().n_critic * 3, 28, v.data.class_ids)

    def cfg(steps: int) -> TrainSettings:
        return TrainSettings(kimg=steps * per_step, progress=False, checkpoint_kimg=per_step)

    straight = Trainer(v, data, cfg(3), tmp_path / "a")
    straight.train()
    Trainer(v, data, cfg(2), tmp_path / "b").train()
    resumed = Trainer(v, data, cfg(3), tmp_path / "b")
    assert resumed.train().resumed_from_step == 2
    for attr in ("G", "D", "G_ema"):
        a, b = getattr(straight, attr).state_dict(), getattr(resumed, attr).state_dict()
        assert states_equal(a, b), attr


# One variant per loss and per kind of randomness inside a step: dropout and the gradient
# penalty's interpolation (wgan-gp), sampled class labels (cgan-mlp-2class), DiffAugment's
# draws and spectral norm's power iteration (sngan-ema-diffaug), dropout under BCE
# (dcgan-upsample). Metric tracking (which loads the evaluator lazily) runs in every one.
KILLED = [
    "wgan-gp",
    "cgan-mlp-2class",
    pytest.param("sngan-ema-diffaug", marks=pytest.mark.slow),  # minutes; in-process below
    pytest.param("dcgan-upsample", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name", KILLED)
def test_sigkill_after_a_checkpoint_resumes_exactly(
    name: str, synthetic_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL `bench train` right after its first checkpoint, run the same command again:
    weights, optimiser and RNG states, the loss log, the tracked metrics and the scores equal
    an uninterrupted run's bit for bit."""
    v = get_variant(name)
    per_step = v.batch_size * v.build_loss().n_critic
    every = max(1, round(500 / per_step))  # the smoke profile checkpoints every 0.5 kimg
    kimg = 3 * every * per_step / 1000
    common = ["train", name, "--profile", "smoke", "--kimg", str(kimg), "--seed", "0",
              "--data-dir", str(synthetic_dir), "--device", "cpu", "--no-progress",
              "--inception-samples", "0"]  # fmt: skip
    killed = tmp_path / "killed"
    proc = bench_process(*common, "--out", str(killed))
    ckpt = killed / name / "seed0" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 3 * every
    for out in (killed, tmp_path / "straight"):
        result = CliRunner().invoke(cli, [*common, "--out", str(out)])
        assert result.exit_code == 0, result.output

    a = load_checkpoint(tmp_path / "straight" / name / "seed0" / "checkpoint.pt")
    b = load_checkpoint(ckpt)
    assert a["step"] == b["step"] == 3 * every
    for key in ("G", "D", "G_ema"):
        assert states_equal(a[key], b[key]), key
    for key in ("opt_g", "opt_d"):
        sa, sb = a[key]["state"], b[key]["state"]
        assert all(states_equal(sa[i], sb[i]) for i in sa), key
    assert states_equal(a["rng"], b["rng"])
    for log in ("losses.csv", "tracked.csv"):
        assert (killed / name / "seed0" / log).read_text() == (
            tmp_path / "straight" / name / "seed0" / log
        ).read_text(), log
    (ra,), (rb,) = RunFolder(tmp_path / "straight").results(), RunFolder(killed).results()
    assert rb["resumed_from_step"] == killed_at and ra["metrics"] == rb["metrics"]


def test_sigterm_while_scoring_says_so_and_the_rerun_scores(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM to `bench train` after its last step, while it scores: exit 130 with a line
    that names the job and says its trained checkpoint is kept (before, the process ended
    silently), no row; the same command then scores it without training a step."""
    out = tmp_path / "run"
    args = ["train", "dcgan", "--profile", "smoke", "--kimg", "0.5", "--seed", "0",
            "--data-dir", str(synthetic_dir), "--device", "cpu", "--no-progress",
            "--inception-samples", "0", "--out", str(out)]  # fmt: skip
    proc = bench_process(*args)
    final_grid = out / "dcgan" / "seed0" / "grid-final.png"  # written as training ends
    deadline = time.monotonic() + 300
    while not final_grid.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)  # well inside the scoring (seconds at this profile)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, output
    assert "stopped after training dcgan seed 0, before its scores were written" in output
    assert "Traceback" not in output
    assert not RunFolder(out).results()
    trained = load_checkpoint(out / "dcgan" / "seed0" / "checkpoint.pt")["step"]

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    (row,) = RunFolder(out).results()
    assert row["status"] == "ok" and row["resumed_from_step"] == trained == row["step"]
