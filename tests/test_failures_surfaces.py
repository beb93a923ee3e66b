"""Bad input, damaged files and killed processes on the surfaces added after the first
hardening round (sweeps, cluster configs and records, sanity, plugins, TensorBoard, parallel
jobs): one `Error:` line and exit 2, no traceback, nothing already written changed by a
refused command, no orphan process after its parent is killed."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import Result

from bench.cluster import ClusterError, ClusterSettings
from bench.runs import RunFolder
from bench.signals import process_start
from bench.sweep import SweepError, parse_spec
from tests.conftest import bench_process, invoke_caught

SMOKE = ["--profile", "smoke", "--inception-samples", "0", "--device", "cpu"]


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error:" in result.output, result.output
    for w in words:
        assert w in result.output, result.output


# ------------------------------------------------------------------------ 1. tracebacks


def test_a_bad_value_inside_a_grid_is_refused_before_the_sweep_writes(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('variants = ["dcgan-small"]\nprofile = "smoke"\ntop = 1\nseeds = 1\n'
                    '[space]\n"optim.lr_g" = [1e-4, "abc", 2e-4]\n')  # fmt: skip
    out = tmp_path / "sweep"
    refused(
        invoke_caught("sweep", spec, "--out", out, "--data-dir", synthetic_dir), "optim.lr_g=abc"
    )
    assert not out.exists()
    # A setting no network can train (a batch larger than the data) anywhere in the grid.
    spec.write_text('variants = ["cgan-mlp-2class"]\nprofile = "smoke"\ntop = 1\nseeds = 1\n'
                    '[space]\nbatch_size = [64, 100000]\n')  # fmt: skip
    refused(invoke_caught("sweep", spec, "--out", out, "--data-dir", synthetic_dir), "cannot train")
    assert not out.exists()


@pytest.mark.parametrize("bound", [math.inf, -math.inf, math.nan])
def test_random_ranges_and_grids_need_finite_numbers(bound: float) -> None:
    base = {"variants": ["dcgan-small"], "profile": "smoke", "search": "random", "settings": 2}
    with pytest.raises(SweepError, match="finite numbers low and high"):
        parse_spec({**base, "space": {"ema_decay": {"low": 0.5, "high": bound}}})
    with pytest.raises(SweepError, match="finite numbers, strings or lists"):
        parse_spec({**base, "search": "grid", "settings": None,
                    "space": {"ema_decay": [0.9, bound]}})  # fmt: skip


@pytest.mark.parametrize(
    "record",
    [[1], {"spec": {}, "settings": [1]}, {"spec": {}, "metric": "fid_fmnist",
     "higher_is_better": False, "settings": [{"id": "../x", "overrides": {}}]}],
)  # fmt: skip
def test_a_damaged_sweep_record_is_one_message(
    synthetic_dir: Path, tmp_path: Path, record: object
) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text(json.dumps(record))
    refused(invoke_caught("report", sweep), "not a sweep record")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'variants = ["dcgan-small"]\nprofile = "smoke"\n[space]\n"optim.lr_g" = [1e-4]\n'
    )
    refused(
        invoke_caught("sweep", spec, "--out", sweep, "--data-dir", synthetic_dir), "not a sweep"
    )
    assert json.loads((sweep / "sweep.json").read_text()) == record  # untouched


def test_a_cluster_record_without_its_job_id_is_one_message(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "cluster").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"run": {"profile": "smoke"}, "seeds": [0],
                                                 "variants": {"dcgan": {}}}))  # fmt: skip
    good = {"variant": "dcgan", "seed": 0, "engine": "slurm", "job_id": "12_0"}
    bad = {k: v for k, v in good.items() if k != "job_id"}
    jobs = run / "cluster" / "jobs.jsonl"
    jobs.write_text(json.dumps(bad) + "\n")
    refused(invoke_caught("status", run), "jobs.jsonl:1", "'job_id' missing")
    jobs.write_text(json.dumps(good) + "\n" + '{"variant": "dc')  # a torn last line: left out
    result = invoke_caught("status", run)
    assert "Traceback" not in result.output and "Error:" not in result.output, result.output


def test_sanity_asked_for_more_images_than_the_training_set(synthetic_dir: Path) -> None:
    refused(invoke_caught("sanity", "--samples", 700, "--data-dir", synthetic_dir), "holds 640")


# ----------------------------------------------------- 2. bad input accepted, success claimed


@pytest.mark.parametrize("mem", ["nan", "inf", "-1", "true"])
def test_cluster_memory_must_be_a_positive_finite_number(tmp_path: Path, mem: str) -> None:
    conf = tmp_path / "cluster.toml"
    conf.write_text(f"[slurm]\nmem_gb = {mem}\n")
    with pytest.raises(ClusterError, match="mem_gb must be"):
        ClusterSettings.from_toml(conf)
    refused(invoke_caught("run", "--variants", "dcgan", "--executor", "submitit-local",
                   "--cluster-config", conf, "--out", tmp_path / "run"), "mem_gb")  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_a_plugin_that_calls_sys_exit_is_refused(synthetic_dir: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "quits.py"
    plugin.write_text("import sys\nsys.exit(0)\n")
    out = tmp_path / "run"
    refused(invoke_caught("run", "--plugin", plugin, "--variants", "dcgan-small", *SMOKE,
                   "--data-dir", synthetic_dir, "--out", out), "called sys.exit(0)")  # fmt: skip
    assert not out.exists()


# --------------------------------------------------- 3. refused commands change nothing


def test_a_refused_slurm_submission_leaves_the_folder_as_it_was(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real sbatch without a reachable controller (a SLURM_CONF naming a closed port)."""
    import shutil

    if shutil.which("sbatch") is None:
        pytest.skip("Slurm's sbatch is not installed (setup.sh installs slurm-wlm)")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=none\nSlurmctldHost=localhost\nSlurmctldPort=9\n"
                    "NodeName=localhost CPUs=1 State=UNKNOWN\n"
                    "PartitionName=p Nodes=localhost Default=YES\n")  # fmt: skip
    monkeypatch.setenv("SLURM_CONF", str(conf))
    args = ["run", "--variants", "dcgan-small", *SMOKE, "--data-dir", synthetic_dir]
    new = tmp_path / "new"
    refused(invoke_caught(*args, "--executor", "slurm", "--slurm-time", 5, "--out", new), "slurm")
    assert not new.exists()
    old = tmp_path / "old"
    assert invoke_caught(*args, "--out", old).exit_code == 0
    before = {p: p.read_bytes() for p in old.rglob("*") if p.is_file() and p.name != ".lock"}
    refused(invoke_caught(*args[:2], "dcgan-small,cgan-mlp", *args[3:], "--executor", "slurm",
                   "--slurm-time", 5, "--out", old), "slurm")  # fmt: skip
    after = {p: p.read_bytes() for p in old.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before and not (old / "cluster").exists()


# ------------------------------------------------------ 4. environment and process tree


def test_a_file_in_the_way_of_tensorboard_is_one_message(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    (out / "dcgan-small" / "seed0").mkdir(parents=True)
    (out / "dcgan-small" / "seed0" / "tensorboard").write_text("not a folder")
    refused(invoke_caught("run", "--variants", "dcgan-small", *SMOKE, "--data-dir", synthetic_dir,
                   "--out", out), "tensorboard", "move it away")  # fmt: skip
    assert not (out / "results.jsonl").exists()  # no `failed` row for the user's file


def _alive(pid: int) -> bool:
    return process_start(pid) is not None and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_killing_the_parent_of_parallel_jobs_leaves_no_orphan(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL to `bench run --jobs 2` mid-training: both workers checkpoint and end within
    seconds (no orphan keeps training or holds a lock), the same command run at once
    resumes them, and the rows equal an uninterrupted run's."""
    common = ["run", "--variants", "dcgan-small", "--seeds", "2", "--profile", "smoke",
              "--kimg", "4",
              "--device", "cpu", "--data-dir", str(synthetic_dir), "--no-progress",
              "--jobs", "2", "--inception-samples", "0"]  # fmt: skip
    out = tmp_path / "killed"
    proc = bench_process(*common, "--out", str(out))
    run = RunFolder(out)
    ckpts = [run.job_dir("dcgan-small", s) / "checkpoint.pt" for s in (0, 1)]
    deadline = time.monotonic() + 300
    while not all(p.exists() for p in ckpts):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoints"
        time.sleep(0.05)
    workers = [int((p.parent / ".lock").read_text()) for p in ckpts]
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers are on their own
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, f"orphans: {[(w, _state(w)) for w in workers]}"
        time.sleep(0.1)
    assert proc.stdout is not None
    proc.stdout.close()
    assert not run.results_path.exists()

    again = bench_process(*common, "--out", str(out))
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    straight = bench_process(*common, "--out", str(tmp_path / "straight"))
    output, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, output
    a, b = run.latest(), RunFolder(tmp_path / "straight").latest()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["status"] == "ok" and a[key]["metrics"] == b[key]["metrics"], key
        assert a[key]["resumed_from_step"] is not None
