"""The CLI through click's CliRunner: happy paths and every bad-input path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import Result

from bench.cli import cli
from bench.runs import RunFolder
from tests.conftest import invoke

TINY = ["--profile", "smoke", "--kimg", "0.256", "--device", "cpu", "--no-progress"]


def assert_usage_error(result: Result, *needles: str) -> None:
    """Exit 2, one 'Error' message naming what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Error" in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_list_shows_variants_and_parameters() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["variant", "seed", "loss"]
    dcgan = next(line for line in lines if line.startswith("dcgan "))
    assert "000" in dcgan and "bce" in dcgan and "837,504" in dcgan and "431,872" in dcgan
    assert any(line.startswith("wgan-gp ") and "004" in line for line in lines)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
    return out


def test_help_on_every_command() -> None:
    """Every command and subcommand answers --help with its usage and its docstring."""
    commands = _commands(cli)
    assert {("run",), ("score",), ("weights", "fetch"), ("reference", "export")} <= set(commands)
    for path in commands:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: cli {' '.join(path)}" in result.output, path
        command = cli
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        assert command.help and command.help.split("\n")[0][:40] in result.output, path


def test_training_options_are_run_plan_fields() -> None:
    """The run-defining options are declared once: each training option of `run` and
    `train` is a RunPlan field of the same name, built by RunPlan.from_options."""
    import dataclasses

    from bench.cli.options import cluster_options
    from bench.jobs import RunPlan

    @cluster_options
    def engine_options() -> None: ...

    engine = {p.name for p in engine_options.__click_params__}  # type: ignore[attr-defined]
    assert {"executor", "detach", "slurm_time"} <= engine  # where the jobs run: not the plan
    plan_fields = {f.name for f in dataclasses.fields(RunPlan)}
    own = {
        "run": {"all_", "variants", "seeds", "out", "dry_run", "as_json", "jobs", *engine},
        "train": {"variant", "seed", "out", "dry_run"},
    }
    for name, skip in own.items():
        options = {p.name for p in cli.commands[name].params} - skip - {"help"}
        assert options and options <= plan_fields, options - plan_fields
    with pytest.raises(TypeError, match="no field"):
        RunPlan.from_options("smoke", ("dcgan",), (0,), colour="red")


def test_run_writes_folder_and_rows(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["run", "--variants", "dcgan", "--seeds", "2", *TINY, "--data-dir", str(synthetic_dir)]
    result = invoke(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    from bench.provenance import cpu_bf16

    assert config["run"] == {
        "profile": "smoke",
        "kimg": 0.256,
        "precision": "bf16" if cpu_bf16() else "fp32",  # the default: auto
        "channels_last": True,
        "faithful": False,
        "overrides": {},
    }
    assert config["seeds"] == [0, 1] and list(config["variants"]) == ["dcgan"]
    assert "torch" in config["versions"] and "git_commit" in config
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["seed"], r["status"]) for r in rows] == [
        ("dcgan", 0, "ok"),
        ("dcgan", 1, "ok"),
    ]
    r = rows[0]
    assert r["kimg"] == 0.256 and r["params_g"] == 837_504 and r["img_per_s"] > 0
    assert (out / r["paths"]["checkpoint"]).is_file() and (out / r["paths"]["grid"]).is_file()
    # A rerun skips finished jobs and appends nothing.
    again = invoke(*args, "--out", str(out))
    assert again.exit_code == 0 and again.output.count("finished earlier, skipped") == 2
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_precision_auto_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """auto: bf16 only on a CPU with native bf16, fp32 on other CPUs and on CUDA; an explicit
    choice is kept; anything else is refused."""
    import bench.jobs
    from bench.jobs import resolve_precision

    monkeypatch.setattr(bench.jobs, "cpu_bf16", lambda: ("avx512_bf16",))
    assert resolve_precision("auto", "cpu") == "bf16"
    assert (
        resolve_precision("auto", "cuda") == "fp32"
        and resolve_precision("auto", "cuda:1") == "fp32"
    )
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu", tmp_path / "new") == "bf16"  # no folder yet
    monkeypatch.setattr(bench.jobs, "cpu_bf16", lambda: ())
    assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        resolve_precision("fp16", "cpu")


def test_precision_auto_keeps_an_existing_folders_numerics(
    monkeypatch: pytest.MonkeyPatch, synthetic_dir: Path, tmp_path: Path
) -> None:
    """A folder made under fp32 (an older default, or a CPU without bf16) resumes under the
    default command on a bf16 CPU instead of being refused for changed numerics; an explicit
    --precision bf16 on it is still refused, and a new folder gets bf16."""
    import bench.jobs

    out = tmp_path / "r"
    base = ["run", "--variants", "dcgan", *TINY, "--data-dir", str(synthetic_dir), "--out"]
    made = invoke(*base, str(out), "--precision", "fp32")
    assert made.exit_code == 0, made.output
    monkeypatch.setattr(bench.jobs, "cpu_bf16", lambda: ("amx_bf16",))
    again = invoke(*base, str(out), "--seeds", "2")  # default precision: auto
    assert again.exit_code == 0, again.output
    assert "fp32" in again.output.splitlines()[0]
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["precision"]) for r in rows] == [(0, "fp32"), (1, "fp32")]
    refused = invoke(*base, str(out), "--precision", "bf16")
    assert refused.exit_code != 0 and "precision: folder has 'fp32', asked 'bf16'" in refused.output
    fresh = invoke(*base, str(tmp_path / "new"))
    assert fresh.exit_code == 0, fresh.output
    (row,) = [json.loads(x) for x in (tmp_path / "new" / "results.jsonl").read_text().splitlines()]
    assert row["precision"] == "bf16"


def test_train_default_out_under_runs_dir(synthetic_dir: Path, isolated_env: Path) -> None:
    result = invoke("train", "dcgan", *TINY, "--seed", "3", "--data-dir", str(synthetic_dir))
    assert result.exit_code == 0, result.output
    (folder,) = (isolated_env / "runs").iterdir()
    assert folder.name.endswith("-smoke-train-dcgan")
    assert (folder / "dcgan" / "seed3" / "checkpoint.pt").is_file()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = invoke("run", "--all", "--profile", "smoke", "--out", str(out), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dcgan" in result.output and "wgan-gp" in result.output and "new" in result.output
    assert "8 steps x 128 img" in result.output and "2 steps x 640 img" in result.output
    assert not out.exists()


@pytest.mark.parametrize("kimg", ["0.0005", "0.0645", "0.256"])
def test_dry_run_step_count_is_what_training_does(
    kimg: str, synthetic_dir: Path, tmp_path: Path
) -> None:
    """One source for the step count: the plan the dry run prints equals the steps trained
    (a budget that is not a whole number of images, or under one step, included)."""
    args = ["run", "--variants", "dcgan", "--profile", "smoke", "--kimg", kimg,
            "--inception-samples", "0", "--data-dir", str(synthetic_dir),
            "--out", str(tmp_path / "r")]  # fmt: skip
    plan = invoke(*args, "--dry-run")
    assert plan.exit_code == 0, plan.output
    steps, per_step = map(int, re.search(r"(\d+) steps x (\d+) img", plan.output).groups())
    trained = invoke(*args)
    assert trained.exit_code == 0, trained.output
    row = json.loads((tmp_path / "r" / "results.jsonl").read_text())
    assert row["kimg"] == pytest.approx(steps * per_step / 1000) and steps >= 1


def test_dry_run_json_is_what_the_run_records(synthetic_dir: Path, tmp_path: Path) -> None:
    """`bench train --dry-run` prints the job's resolved settings as the run then records
    them: config.json's run, profile and variant entries, the row's first fields and steps."""
    args = ["train", "dcgan-small", *TINY, "--inception-samples", "0", "--set", "arch.ngf=8",
            "--seed", "1", "--data-dir", synthetic_dir, "--out", tmp_path / "r"]  # fmt: skip
    dry = invoke(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert not (tmp_path / "r").exists()
    assert invoke(*args).exit_code == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    row = json.loads((tmp_path / "r" / "results.jsonl").read_text())
    assert planned["run"] == config["run"] and planned["profile"] == config["profile"]
    assert planned["variant"] == config["variants"]["dcgan-small"]
    assert planned["variant"]["arch"]["ngf"] == 8
    assert {k: row[k] for k in planned["job"]} == planned["job"]
    assert planned["train"]["total_steps"] == row["total_steps"]
    assert planned["eval"]["num_samples"] == row["protocol"]["fmnist"]["num_samples"]
    many = invoke("run", "--variants", "dcgan-small,dcgan", "--seeds", "2", *TINY,
                  "--dry-run", "--json")  # fmt: skip
    assert [(j["job"]["variant"], j["job"]["seed"]) for j in json.loads(many.output)] == [
        ("dcgan-small", 0), ("dcgan", 0), ("dcgan-small", 1), ("dcgan", 1)]  # fmt: skip
    assert_usage_error(invoke("run", "--variants", "dcgan", "--json"), "--json goes with")


@pytest.mark.parametrize("command", ["train", "run"])
def test_a_command_builds_one_plan(
    command: str, synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan a command checks is the plan it trains: built once, with 'auto' precision
    resolved once, and handed down to the engine."""
    from bench.jobs import RunPlan

    built: list[RunPlan] = []
    make = RunPlan.from_options.__func__  # type: ignore[attr-defined]

    def counted(cls: type[RunPlan], *a: object, **kw: object) -> RunPlan:
        built.append(make(cls, *a, **kw))
        return built[-1]

    monkeypatch.setattr(RunPlan, "from_options", classmethod(counted))
    which = ["train", "dcgan-small"] if command == "train" else ["run", "--variants", "dcgan-small"]
    result = invoke(*which, *TINY, "--inception-samples", "0", "--data-dir", synthetic_dir,
                    "--out", tmp_path / "r")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(built) == 1
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["run"]["precision"] == built[0].precision


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "nope"], ["unknown variant 'nope'", "dcgan, dcgan-small", "sngan-ema-diffaug"]),
        (["run", "--variants", "dcgan,nope"], ["unknown variant 'nope'"]),
        (["run", "--variants", ","], ["at least one variant"]),
        (["run"], ["--all or --variants"]),
        (["run", "--all", "--variants", "dcgan"], ["not both"]),
        (["run", "--all", "--profile", "huge"], ["'huge' is not one of", "smoke", "quick"]),
        (["run", "--all", "--seeds", "0"], ["--seeds"]),
        (["run", "--all", "--kimg", "-1"], ["--kimg"]),
        (["run", "--all", "--precision", "fp16"], ["'fp16' is not one of"]),
        (["train", "dcgan", "--seed", "-1"], ["--seed"]),
        (["run", "--all", "--device", "tpu9"], ["not a device"]),
        (["perf", "--precision", "fp8"], ["fp8"]),
        (["bogus"], ["No such command"]),
        (["run", "--variants", "dcgan", "--set", "ngf"], ["'ngf' is not KEY=VALUE"]),
        (["run", "--variants", "dcgan", "--set", "arch.gch=32"], ["arch.ngf", "valid keys"]),
        (["run", "--variants", "dcgan", "--set", "arch.ngf=wide"], ["not a valid int"]),
        (["run", "--variants", "dcgan", "--set", "ema_decay=1"], ["ema_decay must be in"]),
        (["train", "dcgan", "--set", "loss=lsgan"], ["unknown loss 'lsgan'", "hinge"]),
    ],
)
def test_bad_input_is_one_clear_error(args: list[str], needles: list[str]) -> None:
    assert_usage_error(invoke(*args), *needles)


def test_missing_data_says_three_ways(tmp_path: Path) -> None:
    result = invoke("run", "--all", *TINY, "--out", str(tmp_path / "r"))
    assert_usage_error(result, "Fashion-MNIST not found", "--data-dir", "apt-get install", "3.")
    assert not (tmp_path / "r").exists()  # no empty run folder left behind


def test_bad_data_dir(tmp_path: Path) -> None:
    result = invoke("train", "dcgan", *TINY, "--data-dir", str(tmp_path / "none"))
    assert_usage_error(result, "lacks train-images-idx3-ubyte")


def test_corrupt_data_file(synthetic_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(synthetic_dir, bad)
    p = bad / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:500])
    result = invoke("train", "dcgan", *TINY, "--data-dir", str(bad), "--out", str(tmp_path / "o"))
    assert_usage_error(result, "train-images-idx3-ubyte.gz", "truncated")


def test_locked_folder_refused(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with RunFolder(out).locked():
        result = invoke(
            "train", "dcgan", *TINY, "--data-dir", str(synthetic_dir), "--out", str(out)
        )
    assert_usage_error(result, "in use by another bench process")
    assert not (out / "results.jsonl").exists() and not (out / "config.json").exists()


def test_conflicting_rerun_keeps_results(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    base = [
        "run",
        "--variants",
        "dcgan",
        *TINY,
        "--data-dir",
        str(synthetic_dir),
        "--out",
        str(out),
    ]
    assert invoke(*base).exit_code == 0
    before = (out / "results.jsonl").read_bytes(), (out / "config.json").read_bytes()
    result = invoke(*base, "--kimg", "0.512")
    assert_usage_error(result, "other settings", "kimg", "--extend")
    assert ((out / "results.jsonl").read_bytes(), (out / "config.json").read_bytes()) == before


def test_extend_continues_finished_jobs_exactly(synthetic_dir: Path, tmp_path: Path) -> None:
    """--extend grows the budget of a finished folder: the job resumes from its checkpoint
    and ends bit-identical to a run of the larger budget from the start; old rows stay."""
    import torch

    from bench.checkpoint import load_checkpoint

    short = ["--profile", "smoke", "--kimg", "0.256", "--device", "cpu", "--no-progress"]
    args = ["run", "--variants", "dcgan", "--data-dir", str(synthetic_dir)]
    out, straight = tmp_path / "ext", tmp_path / "straight"
    assert invoke(*args, *short, "--out", str(out)).exit_code == 0
    longer = [*short[:2], "--kimg", "0.512", *short[4:]]
    assert invoke(*args, *longer, "--out", str(straight)).exit_code == 0
    result = invoke(*args, *longer, "--extend", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "resumed at step 2" in result.output
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["kimg_budget"] for r in rows] == [0.256, 0.512] and rows[1]["step"] == 4
    assert json.loads((out / "config.json").read_text())["run"]["kimg"] == 0.512
    a = load_checkpoint(out / "dcgan" / "seed0" / "checkpoint.pt")["G_ema"]
    b = load_checkpoint(straight / "dcgan" / "seed0" / "checkpoint.pt")["G_ema"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = invoke(*args, *longer, "--extend", "--out", str(out))
    assert again.exit_code == 0 and "skipped" in again.output  # finished at this budget
    before = (out / "results.jsonl").read_bytes()
    assert_usage_error(invoke(*args, *short, "--extend", "--out", str(out)), "only grows")
    assert (out / "results.jsonl").read_bytes() == before


def test_set_overrides_train_record_and_guard_the_folder(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    args = ["run", "--variants", "dcgan", *TINY, "--data-dir", str(synthetic_dir)]
    sets = ["--set", "arch.ngf=16", "--set", "optim.betas=0.0,0.9", "--set", "augment=cutout"]
    result = invoke(*args, *sets, "--out", str(out))
    assert result.exit_code == 0, result.output
    want = {"arch.ngf": "16", "optim.betas": "0.0,0.9", "augment": "cutout"}
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["overrides"] == want
    recorded = config["variants"]["dcgan"]
    assert recorded["arch"]["ngf"] == 16 and recorded["optim"]["betas"] == [0.0, 0.9]
    assert recorded["augment"] == ["cutout"]
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["overrides"] == want and row["status"] == "ok"
    assert row["params_g"] < 837_504  # the narrower generator really trained
    # The same folder without the overrides would mix recipes: refused, nothing lost.
    before = (out / "results.jsonl").read_bytes()
    assert_usage_error(invoke(*args, "--out", str(out)), "other settings", "overrides")
    assert (out / "results.jsonl").read_bytes() == before


def test_rerun_may_add_variants_and_seeds(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    base = ["run", *TINY, "--data-dir", str(synthetic_dir), "--out", str(out)]
    assert invoke(*base, "--variants", "dcgan").exit_code == 0
    result = invoke(*base, "--variants", "dcgan", "--seeds", "2")
    assert result.exit_code == 0 and "skipped" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["seeds"] == [0, 1] and len(config["history"]) == 2


def test_corrupt_results_file_is_reported(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "results.jsonl").write_text('{"variant": "dcgan", "seed": 0, "status": "ok"}\n{oops\n')
    result = invoke("train", "dcgan", *TINY, "--data-dir", str(synthetic_dir), "--out", str(out))
    assert_usage_error(result, "results.jsonl:2", "not valid JSON")


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    from bench.runs import read_results

    p = tmp_path / "results.jsonl"
    p.write_text('{"variant": "dcgan", "seed": 0, "status": "ok"}\n{"variant": "wg')
    assert [r["variant"] for r in read_results(p)] == ["dcgan"]


def test_faithful_trains_on_the_seeds_half(synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    base = ["train", "wgan-gp", *TINY, "--data-dir", str(synthetic_dir), "--out", str(out)]
    result = invoke(*base, "--faithful")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["train_images"] == 320  # half of the 640 synthetic training images
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["faithful"] is True
    assert config["variants"]["wgan-gp"]["data"]["fraction"] == 0.5
    assert_usage_error(invoke(*base), "other settings", "faithful")  # no silent mixing


def test_conditional_grid_has_a_named_row_per_class(synthetic_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "r"
    args = ["train", "cgan-mlp-2class", *TINY, "--data-dir", str(synthetic_dir), "--out", str(out)]
    assert invoke(*args).exit_code == 0
    grid = Image.open(out / "cgan-mlp-2class" / "seed0" / "grid-final.png")
    assert grid.height == 2 * 30 + 2  # two rows of 28 px with 2 px padding
    assert grid.width > 8 * 30 + 2 + 40  # plus a margin holding the class names
    margin = grid.crop((0, 0, grid.width - (8 * 30 + 2), grid.height)).convert("L")
    assert min(margin.getextrema()) < 128  # text was drawn there


def test_perf_prints_throughput() -> None:
    result = invoke(
        "perf", "--variants", "dcgan", "--precision", "fp32", "--steps", "1", "--warmup", "0",
        "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [x.split() for x in result.output.splitlines() if x.startswith("dcgan")]
    assert [x[1] for x in lines] == ["reference", "fp32-nchw", "fp32-cl"]  # the plain loop first
    assert all(float(x[2]) > 0 for x in lines)
    assert float(lines[0][4]) == 1.0  # the ratio column is relative to the reference
    cl, ref = float(lines[2][2]), float(lines[0][2])  # img/s as printed: whole numbers
    ratio = cl / ref  # from the rounded figures: off by up to half a unit in each
    assert abs(float(lines[2][4]) - ratio) <= 0.005 + ratio * (0.5 / cl + 0.5 / ref)


def test_perf_metrics_times_cas(synthetic_dir: Path) -> None:
    """`bench perf-metrics` prints CAS's cost at each size (accuracy a probability), beside
    the evaluator metrics it is compared with; a bad size list is a usage error."""
    args = ("perf-metrics", "--images", "2", "--batch-size", "2", "--evaluator-samples", "100",
            "--data-dir", str(synthetic_dir))  # fmt: skip
    result = invoke(*args, "--cas-samples", "64,128")
    assert result.exit_code == 0, result.output
    cas = result.output.split("CAS classifier", 1)[1].splitlines()[2:]
    assert [x.split()[0] for x in cas] == ["64", "128"]
    assert all(float(x.split()[1]) > 0 and 0 <= float(x.split()[2]) <= 1 for x in cas)
    assert all(x.endswith("at N=100") for x in cas)
    assert "CAS classifier" not in invoke(*args, "--cas-samples", "").output
    bad = invoke(*args, "--cas-samples", "1")
    assert bad.exit_code == 2 and "--cas-samples" in bad.output and "Traceback" not in bad.output
    bad = invoke(*args, "--inception-batches", "0,2")
    assert bad.exit_code == 2 and "--inception-batches" in bad.output


def test_perf_metrics_times_inception_batches(synthetic_dir: Path, isolated_env: Path) -> None:
    """`bench perf-metrics --inception-batches` times each batch size and prints its
    features' difference from the first batch size's (rounding at most: the batch changes
    speed, not the result)."""
    from tests.conftest import link_offline_pool3

    if not link_offline_pool3(isolated_env / "cache"):  # the test's own cache folder
        pytest.skip("offline Inception not prepared (./setup.sh runs `bench weights fetch`)")
    result = invoke("perf-metrics", "--images", "3", "--batch-size", "3", "--inception-batches",
                    "3,2,1", "--evaluator-samples", "100", "--cas-samples", "",
                    "--data-dir", str(synthetic_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [x.split() for x in result.output.splitlines() if x.startswith("inception channels")]
    assert [x[3] for x in lines] == ["3", "2", "1"]
    assert lines[0][-1] == "0.00e+00"  # the first against itself
    # features agree to float rounding (bit for bit on the Intel Xeon that chose the batch)
    assert all(float(x[4]) > 0 and float(x[-1]) < 1e-3 for x in lines), result.output


@pytest.mark.integration
def test_smoke_run_all_on_real_data(real_dir: Path, tmp_path: Path) -> None:
    """Every registered variant trains on the real Fashion-MNIST at the smoke budget."""
    out = tmp_path / "smoke"
    result = invoke(
        "run", "--all", "--profile", "smoke", "--device", "cpu", "--no-progress",
        "--data-dir", str(real_dir), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    import models

    assert sorted(r["variant"] for r in rows) == sorted(models.variant_names())
    assert {r["variant"]: r["status"] for r in rows} == dict.fromkeys(models.variant_names(), "ok")
    sizes = {r["variant"]: r["train_images"] for r in rows}
    assert sizes.pop("cgan-mlp-2class") == 9_600  # 80% of 2 x 6,000: seed 003's split
    assert set(sizes.values()) == {60_000}


def test_cpu_bf16_flags() -> None:
    from bench.provenance import cpu_bf16

    zen4 = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512vl\n"
    sapphire = "flags\t: avx512f amx_tile amx_bf16 avx512_bf16\n"
    assert cpu_bf16(zen4) == ("avx512_bf16",)
    assert cpu_bf16(sapphire) == ("avx512_bf16", "amx_bf16")
    assert cpu_bf16("flags\t: fpu sse2 avx2\n") == () and cpu_bf16("") == ()
    result = invoke("perf", "--variants", "cgan-mlp-2class", "--precision", "fp32", "--steps",
                    "1", "--warmup", "0", "--device", "cpu")  # fmt: skip
    head = result.output.splitlines()[0]
    assert result.exit_code == 0 and "CPU native bf16: " in head
    assert head.endswith("(--precision auto): " + ("bf16" if cpu_bf16() else "fp32"))
