"""The real-data floor (`bench floor`): draws of training images scored with a run's protocol,
kept beside the run's rows and printed above them by `bench report`; and the CPU every row
names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.floor import FLOOR_VARIANT, read_floor
from bench.provenance import cpu_description, cpu_model
from bench.sanity import real_draw, rungs
from tests.conftest import invoke_caught
from tests.test_reports import row


def test_floor_rows_resume_and_sit_above_the_run_in_the_report(
    real_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"

    def floor(draws: str) -> tuple[int, str]:
        return _codeout("floor", "--out", str(run), "--profile", "smoke", "--draws", draws,
                      "--data-dir", str(real_dir))  # fmt: skip

    code, out = floor("0,1")
    assert code == 0, out
    rows = read_floor(run)
    assert [r["draw"] for r in rows] == [0, 1] and out.count("draw ") == 2
    assert {r["variant"] for r in rows} == {FLOOR_VARIANT}
    assert rows[0]["images"]["size"] == 500 and rows[0]["profile"] == "smoke"  # smoke: 500
    assert rows[0]["cpu"] == cpu_description()
    assert rows[0]["protocol"]["fmnist"]["num_samples"] == 500
    fids = [r["metrics"]["fid_fmnist"] for r in rows]
    assert fids[0] != fids[1] and all(0 < f < 30 for f in fids)  # two draws, near the floor

    # Only the missing draw is scored on a rerun; the first rows are kept byte for byte.
    before = (run / "floor.jsonl").read_text()
    code, out = floor("0,1,2")
    assert code == 0, out
    assert out.count("draw ") == 1 and (run / "floor.jsonl").read_text().startswith(before)
    assert [r["draw"] for r in read_floor(run)] == [0, 1, 2]

    # `bench report` prints the floor (mean ± std over the 3 draws) above the variants.
    (run / "results.jsonl").write_text(json.dumps(row("dcgan", 0, 40.0, 5.0)) + "\n")
    code, out = _codeout("report", str(run))
    assert code == 0, out
    md = (run / "report" / "tables.md").read_text()
    top, every = md.split("### All metrics")
    assert top.index("| `real data (floor)` | 3 | ") < top.index("| `dcgan`")  # the headline
    assert every.index("Real-data floor") < every.index("| `dcgan`")
    md = every
    line = next(x for x in md.splitlines() if x.startswith(f"| `{FLOOR_VARIANT}`"))
    mean = sum(r["metrics"]["fid_fmnist"] for r in read_floor(run)) / 3
    assert line.split(" | ")[1].startswith(f"{mean:.3f} ± ")
    assert "*" not in line  # the floor is not ranked
    assert "Real-data floor" in (run / "report" / "report.html").read_text()


def test_floor_draws_are_the_ladders_real_rung(real_dir: Path) -> None:
    images, labels = real_draw(str(real_dir), 200, 3)
    rung_images, rung_labels = rungs(str(real_dir), 200, draw=3)["real"]
    assert torch.equal(images, rung_images) and torch.equal(labels, rung_labels)
    assert not torch.equal(images, real_draw(str(real_dir), 200, 4)[0])


@pytest.mark.parametrize("draws", [",", "a", "0,0", "-1", ""])
def test_bad_draws_are_refused_before_anything_is_written(tmp_path: Path, draws: str) -> None:
    for command in (["floor", "--out", str(tmp_path / "run"), "--profile", "smoke"], ["sanity"]):
        code, out = _codeout(*command, "--draws", draws)
        assert code == 2 and "--draws" in out and "Traceback" not in out
    assert not (tmp_path / "run").exists()


def test_floor_follows_the_run_folders_profile(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"run": {"profile": "lucic"}}))
    code, out = _codeout("floor", "--out", str(run), "--profile", "smoke")
    assert code == 2 and "holds a 'lucic' run" in out
    code, out = _codeout("floor", "--out", str(tmp_path / "new"))
    assert code == 2 and "name the --profile" in out
    assert not (run / "floor.jsonl").exists() and not (tmp_path / "new").exists()


def test_cpu_model_reads_proc_cpuinfo() -> None:
    info = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx512_bf16 sse\n"
    assert cpu_model(info) == "AMD EPYC 9R14"
    assert cpu_description(info) == {"model": "AMD EPYC 9R14", "bf16": ["avx512_bf16"]}
    assert cpu_model("flags\t: fpu\n")  # no model name: the platform's string, never empty


def _codeout(*args: str) -> tuple[int, str]:
    result = invoke_caught(*args)
    return result.exit_code, result.output
