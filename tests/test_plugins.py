"""Variants from outside the package: the example plugin through an entry point and through
--plugin, origins recorded and compared, and one message for each kind of broken plugin."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.runs import RunFolder
from models import losses, plugins, registry
from models.plugins import PluginError, load_plugin
from tests.conftest import invoke

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lsgan"
EXAMPLE_FILE = EXAMPLE / "fmgan_lsgan" / "gan.py"
TINY = ["--profile", "smoke", "--kimg", "0.256", "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def clean_registry() -> object:
    """Whatever a test's plugins register is gone after it: the registry is process-wide."""
    saved = (dict(registry._VARIANTS), dict(losses._LOSSES), dict(plugins._LOADED))
    errors = list(plugins._ERRORS)
    yield
    for live, old in zip((registry._VARIANTS, losses._LOSSES, plugins._LOADED), saved,
                         strict=True):  # fmt: skip
        live.clear()
        live.update(old)
    plugins._ERRORS[:] = errors
    for name in [m for m in sys.modules if m.startswith(("fmgan_bench_plugin_", "fmgan_lsgan"))]:
        del sys.modules[name]


def forget_plugins() -> None:
    """This process as if no plugin had been loaded (a new `bench` command)."""
    for name in [n for n, v in registry._VARIANTS.items() if v.origin is not None]:
        del registry._VARIANTS[name]
    losses._LOSSES.pop("least-squares", None)
    plugins._LOADED.clear()
    for name in [m for m in sys.modules if m.startswith("fmgan_bench_plugin_")]:
        del sys.modules[name]


def installed(site: Path, package: Path, dist: str, entry_points: str) -> Path:
    """``package`` copied into ``site`` with a dist-info that declares ``entry_points``: what
    `pip install` leaves behind, without touching the environment the tests run in."""
    site.mkdir(parents=True, exist_ok=True)
    if package.exists():
        shutil.copytree(package, site / package.name)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    (info / "top_level.txt").write_text(f"{package.name}\n")
    return site


def bench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`bench ARGS` in a new process whose sys.path holds ``site``, as an installed plugin."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


# ---------------------------------------------------------------------- end to end


@pytest.mark.integration
def test_installed_example_trains_scores_and_reports_beside_builtins(
    real_dir: Path, tmp_path: Path
) -> None:
    """The walk-through of docs/own-gan.md: an installed package's variant in `bench list`, trained
    with a built-in one by one `bench run`, scored, and in the report."""
    site = installed(tmp_path / "site", EXAMPLE / "fmgan_lsgan", "fmgan-lsgan",
                     "[fmgan_bench.variants]\nlsgan = fmgan_lsgan.gan\n")  # fmt: skip
    listed = bench(site, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("lsgan "))
    assert "mao2017" in line and "least-squares" in line and "fmgan-lsgan 0.1.0 sha256" in line

    out = tmp_path / "run"
    ran = bench(site, "run", "--variants", "lsgan,dcgan-small", "--profile", "smoke",
                "--device", "cpu", "--no-progress", "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = {r["variant"]: r for r in RunFolder(out).results()}
    assert {v: r["status"] for v, r in rows.items()} == {"lsgan": "ok", "dcgan-small": "ok"}
    origin = rows["lsgan"]["origin"]
    assert origin["package"] == "fmgan-lsgan" and origin["version"] == "0.1.0"
    assert origin["plugin"] == "lsgan" and len(origin["sha256"]) == 64
    assert "origin" not in rows["dcgan-small"]
    assert rows["lsgan"]["metrics"]["fid_fmnist"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["variants"]["lsgan"]["origin"] == origin
    assert config["variants"]["lsgan"]["loss"] == "least-squares"

    scored = bench(site, "score", str(out / "lsgan" / "seed0"), "--samples", "500",
                   "--inception-samples", "0", "--ppl-samples", "100", "--device", "cpu",
                   "--json", cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["metrics"] == rows["lsgan"]["metrics"]

    report = bench(site, "report", str(out), "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    tables = (tmp_path / "report" / "tables.md").read_text()
    assert "lsgan" in tables and "dcgan-small" in tables
    assert "fmgan-lsgan 0.1.0" in tables  # the report says where the plugin variant comes from


def test_plugin_file_in_worker_processes(synthetic_dir: Path, tmp_path: Path) -> None:
    """--plugin travels in the run plan: pool workers load it and give the rows a run in
    this process gives."""
    common = [*TINY, "--data-dir", str(synthetic_dir), "--inception-samples", "0",
              "--plugin", str(EXAMPLE_FILE), "--variants", "lsgan", "--seeds", "2"]  # fmt: skip
    assert invoke("run", *common, "--out", str(tmp_path / "seq"), "--threads", "1").exit_code == 0
    par = invoke("run", *common, "--out", str(tmp_path / "par"), "--jobs", "2")
    assert par.exit_code == 0, par.output
    keep = ("metrics", "origin", "status", "total_steps", "kimg")
    seq_rows = {r["seed"]: {k: r[k] for k in keep} for r in RunFolder(tmp_path / "seq").results()}
    par_rows = {r["seed"]: {k: r[k] for k in keep} for r in RunFolder(tmp_path / "par").results()}
    assert seq_rows == par_rows and seq_rows[0]["origin"]["file"] == str(EXAMPLE_FILE)


def test_changed_plugin_code_is_refused_on_resume_and_score(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mygan.py"
    mine.write_text(EXAMPLE_FILE.read_text())
    out = tmp_path / "run"
    args = ["run", *TINY, "--data-dir", str(synthetic_dir), "--inception-samples", "0",
            "--variants", "lsgan", "--out", str(out)]  # fmt: skip
    assert invoke(*args, "--plugin", str(mine)).exit_code == 0

    # Without the plugin, the folder says which one it needs.
    forget_plugins()
    result = CliRunner().invoke(cli, ["run", *TINY, "--data-dir", str(synthetic_dir),
                                      "--variants", "dcgan-small", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "holds variant 'lsgan'" in result.output and f"--plugin {mine}" in result.output

    mine.write_text(mine.read_text().replace("0.5 * ((s - self.c)", "0.25 * ((s - self.c)"))
    forget_plugins()
    config = (out / "config.json").read_bytes()
    result = CliRunner().invoke(cli, [*args, "--plugin", str(mine), "--extend", "--kimg", "0.5"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "code changed since" in result.output
    assert (out / "config.json").read_bytes() == config  # refused before anything is written
    scored = CliRunner().invoke(cli, ["score", str(out / "lsgan" / "seed0"), "--plugin",
                                      str(mine), "--samples", "300", "--inception-samples", "0",
                                      "--ppl-samples", "0", "--device", "cpu", "--data-dir",
                                      str(synthetic_dir)])  # fmt: skip
    assert scored.exit_code == 2 and "score it with the plugin code that trained it" in (
        scored.output
    ), scored.output


# ---------------------------------------------------------------------- broken plugins

GOOD = EXAMPLE_FILE.read_text()
# kind: (text of the example replaced, by what, the message's telling part)
EDITS = {
    "clash": ('register_variant("lsgan")', 'register_variant("dcgan")',
              "variant 'dcgan' is already registered"),
    "loss-clash": ('register_loss("least-squares")', 'register_loss("hinge")',
                   "loss 'hinge' is already registered"),
    "shape": ("nn.ConvTranspose2d(g, 1, 4, 2, 1),  # 28x28", "nn.Conv2d(g, 1, 3, 1, 1),",
              "G(z, labels) gave (4, 1, 14, 14) for a batch of 4, expected (4, 1, 28, 28)"),
    "range": ("return self.net(self.fc(z)", "return 2 + self.net(self.fc(z)",
              "outside data.value_range"),
    "scores": ("nn.Linear(2 * d * 7 * 7, 1)", "nn.Linear(2 * d * 7 * 7, 3)",
               "D(x, labels) gave (12,) for a batch of 4"),
}  # fmt: skip
BROKEN = {
    "import": ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
    "not-a-variant": (
        GOOD + '\n\n@register_variant("lsgan-b")\ndef _b():\n    return {"loss": "bce"}\n',
        "its factory returned dict, not a Variant",
    ),
    "empty": ("X = 1\n", "registered no variant"),
    **{kind: (GOOD.replace(old, new), needle) for kind, (old, new, needle) in EDITS.items()},
}


@pytest.mark.parametrize("kind", BROKEN)
def test_broken_plugin_is_one_message_and_registers_nothing(kind: str, tmp_path: Path) -> None:
    code, needle = BROKEN[kind]
    path = tmp_path / f"broken_{kind.replace('-', '_')}.py"
    path.write_text(code)
    before = (registry.variant_names(), losses.loss_names())
    with pytest.raises(PluginError) as info:
        load_plugin(str(path))
    assert str(info.value).startswith(f"plugin {path}: ") and needle in str(info.value)
    assert (registry.variant_names(), losses.loss_names()) == before  # nothing half-registered
    # The command line: one Error line, exit 2, no traceback.
    result = CliRunner().invoke(cli, ["list", "--plugin", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for --plugin: plugin " in result.output and needle in result.output
    assert load_plugin(str(EXAMPLE_FILE)).variants == ("lsgan",)  # a good one still loads


def test_missing_plugin_file_and_module(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="no such file"):
        load_plugin(str(tmp_path / "nope.py"))
    with pytest.raises(PluginError, match=re.escape("plugin no_such_pkg.gan: cannot import it")):
        load_plugin("no_such_pkg.gan")


def test_broken_entry_point_warns_and_the_rest_work(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "badgan").mkdir(parents=True)
    (site / "badgan" / "__init__.py").write_text("raise RuntimeError('half-written plugin')\n")
    installed(site, tmp_path / "none", "badgan", "[fmgan_bench.variants]\nbad = badgan\n")
    installed(site, EXAMPLE / "fmgan_lsgan", "fmgan-lsgan",
              "[fmgan_bench.variants]\nlsgan = fmgan_lsgan.gan\n")  # fmt: skip
    listed = bench(site, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    warnings = [x for x in listed.stderr.splitlines() if x.startswith("warning:")]
    assert warnings == [
        "warning: plugin 'bad' (badgan, badgan 0.1.0): RuntimeError: half-written plugin; "
        "its variants are not available"
    ], listed.stderr
    assert "Traceback" not in listed.stderr
    names = [x.split()[0] for x in listed.stdout.splitlines()[1:]]
    assert "dcgan" in names and "lsgan" in names


def test_module_origin_hashes_the_package_source(tmp_path: Path) -> None:
    site = tmp_path / "site"
    installed(site, EXAMPLE / "fmgan_lsgan", "fmgan-lsgan", "")
    sys.path.insert(0, str(site))
    try:
        a = plugins.module_origin("fmgan_lsgan.gan")
        (site / "fmgan_lsgan" / "gan.py").write_text(GOOD + "\n# edited\n")
        b = plugins.module_origin("fmgan_lsgan.gan")
    finally:
        sys.path.remove(str(site))
    assert (a["package"], a["version"], a["module"]) == ("fmgan-lsgan", "0.1.0", "fmgan_lsgan.gan")
    assert a["sha256"] != b["sha256"] and not plugins.same_code(a, b)
    assert plugins.same_code(a, dict(a, path="/elsewhere")) and plugins.same_code(None, None)
    assert not plugins.same_code(None, a)


def test_sweep_of_a_plugin_variant_on_submitit_local(synthetic_dir: Path, tmp_path: Path) -> None:
    """--plugin on `bench sweep`, with every setting's job a submitit-local task: each task
    process loads the plugin file from the run plan, and the sweep searches the plugin
    loss's own setting."""
    spec = tmp_path / "spec.toml"
    spec.write_text('variants = ["lsgan"]\nprofile = "smoke"\nkimg = 0.256\ntop = 1\nseeds = 1\n'
                    '[space]\n"loss_kwargs.c" = [1.0, 0.5]\n')  # fmt: skip
    out = tmp_path / "sweep"
    result = invoke("sweep", str(spec), "--plugin", str(EXAMPLE_FILE), "--out", str(out),
                    "--data-dir", str(synthetic_dir), "--executor", "submitit-local",
                    "--slurm-cpus", "1", "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "sweep.json").read_text())
    assert len(record["settings"]) == 2
    for s in record["settings"]:
        (row,) = RunFolder(out / s["id"]).results()
        assert row["status"] == "ok" and row["cluster"]["engine"] == "submitit-local"
        assert row["origin"]["file"] == str(EXAMPLE_FILE)
        assert row["overrides"] == s["overrides"]
    forget_plugins()
    without = CliRunner().invoke(cli, ["sweep", str(spec), "--dry-run"])
    assert without.exit_code == 2 and "lsgan" in without.output  # unknown without --plugin
