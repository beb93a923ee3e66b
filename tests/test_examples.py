"""The worked examples run as written: the CI gate a user copies (examples/ci-gate/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "ci-gate"
LSGAN = ROOT / "examples" / "lsgan" / "fmgan_lsgan" / "gan.py"


def gate_steps(workflow: str) -> list[tuple[str, str]]:
    """(name, run) of every step between the `# gate: begin` and `# gate: end` markers."""
    body = workflow.split("# gate: begin", 1)[1].split("# gate: end", 1)[0]
    steps = re.findall(r"- name: (.+)\n(?:\s+if: .+\n)?\s+run: (.+)\n", body)
    assert steps, "no steps between the markers"
    return steps


def test_the_workflow_names_its_steps() -> None:
    steps = dict(gate_steps((EXAMPLE / "gate.yml").read_text()))
    assert set(steps) == {"train at the ci budget", "absolute bounds",
                          "no worse than the last accepted run", "report"}  # fmt: skip
    assert "--thresholds gate/thresholds.toml" in steps["absolute bounds"]
    assert "--baseline gate/baseline.jsonl" in steps["no worse than the last accepted run"]


@pytest.mark.integration
def test_the_ci_gate_example_runs_as_written(real_dir: Path, tmp_path: Path) -> None:
    """A user's repository: their plugin (the lsgan example) as gan.py, the two TOML files in
    gate/. The workflow's steps run as written: the first time, the baseline is bootstrapped
    from the run (as the workflow's header says) and every gate passes; then the same rows
    with a generator that lost its quality fail both gates, naming the rules."""
    repo = tmp_path / "repo"
    (repo / "gate").mkdir(parents=True)
    for name in ("thresholds.toml", "regression.toml"):
        shutil.copy(EXAMPLE / name, repo / "gate" / name)
    shutil.copy(LSGAN, repo / "gan.py")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PLUGIN": "gan.py", "VARIANT": "lsgan",
           "FMGAN_DATA_DIR": str(real_dir), "PATH": f"{bin_dir}:{os.environ['PATH']}"}  # fmt: skip
    steps = gate_steps((EXAMPLE / "gate.yml").read_text())

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=repo, env=env, text=True,
                              capture_output=True, timeout=900)  # fmt: skip

    for name, command in steps:
        if name == "no worse than the last accepted run":  # the one-time bootstrap
            shutil.copy(repo / "runs" / "gate" / "results.jsonl", repo / "gate" / "baseline.jsonl")
        done = run(command)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    assert (repo / "runs" / "gate" / "report" / "report.html").is_file()

    # The same run with its quality gone: both gates fail, each naming its rules.
    results = repo / "runs" / "gate" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    for r in rows:
        r["metrics"]["fid_fmnist"] = 577.0  # uniform noise's FID(fmnist) at this budget
        r["metrics"]["is_fmnist"] = 1.6
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, command in steps[1:3]:
        done = run(command)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        assert "VIOLATION" in done.stdout and "fid_fmnist" in done.stdout
