"""Failure modes (README "Failure modes"): torn result lines, damaged files of our own formats,
a full or read-only disk, input that can never train, unsafe files, bounds that are not
numbers. Each case: one message naming the file or value, a non-zero exit where the command
cannot go on, no traceback, nothing written earlier lost."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli
from bench.errors import RunFolderError
from bench.fsutil import append_line
from bench.runs import RunFolder, read_results, torn_tail

TINY = ["--profile", "smoke", "--kimg", "0.256", "--device", "cpu", "--no-progress",
        "--inception-samples", "0"]  # fmt: skip


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error(result: Result, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    for needle in needles:
        assert needle in result.output, result.output


# ---------------------------------------------------------------------- torn results lines


def test_append_repairs_a_torn_tail_first(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"variant": "a", "seed": 0, "status": "ok"}\n{"variant": "b", "se')
    assert torn_tail(path) and f"{path}:2: torn last line (20 bytes" in torn_tail(path)
    assert [r["variant"] for r in read_results(path)] == ["a"]
    append_line(path, json.dumps({"variant": "b", "seed": 0, "status": "ok"}))
    assert [r["variant"] for r in read_results(path)] == ["a", "b"]  # not fused with the tail
    assert torn_tail(path) is None
    assert (tmp_path / "results.jsonl.torn").read_text() == '{"variant": "b", "se\n'


def test_failed_append_leaves_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.jsonl"
    append_line(path, '{"variant": "a", "seed": 0, "status": "ok"}')
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        real_write(fd, data[:10])  # the disk fills after 10 bytes
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        append_line(path, '{"variant": "b", "seed": 0, "status": "ok"}')
    monkeypatch.undo()
    assert path.read_text() == '{"variant": "a", "seed": 0, "status": "ok"}\n'


@pytest.fixture
def two_seed_run(synthetic_dir: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    out = tmp_path / "run"
    args = ["run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small",
            "--seeds", "2", "--out", out]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return out, [str(a) for a in args]


def test_torn_row_is_reported_and_recomputed(two_seed_run: tuple[Path, list[str]]) -> None:
    out, args = two_seed_run
    results = out / "results.jsonl"
    whole = RunFolder(out).results()
    text = results.read_text()
    results.write_text(text[: len(text) - 40])  # seed 1's row cut short by a kill
    for command in (("report", out), ("status", out)):
        result = invoke(*command)
        assert result.exit_code == 0 and f"{results}:2: torn last line" in result.output, (
            result.output
        )
    rerun = invoke(*args)
    assert rerun.exit_code == 0, rerun.output
    assert f"{results}:2: torn last line" in rerun.output and "now recomputes" in rerun.output
    assert "dcgan-small seed 0: finished earlier, skipped" in rerun.output
    rows = RunFolder(out).results()  # valid JSON lines again, seed 1 recomputed
    assert [(r["seed"], r["status"]) for r in rows] == [(0, "ok"), (1, "ok")]
    assert rows[1]["metrics"] == whole[1]["metrics"]  # from its checkpoint: the same scores
    assert rows[1]["resumed_from_step"] == whole[1]["total_steps"]
    assert torn_tail(results) is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('["not", "a", "row"]', "a JSON list, not an object"),
        ('{"seed": 0, "status": "ok"}', "'variant' missing or not a str"),
        ('{"variant": "dcgan", "seed": "0", "status": "ok"}', "'seed' missing or not a int"),
        (
            '{"variant": "dcgan", "seed": 0, "status": "ok", "metrics": {"fid_fmnist": "12"}}',
            "metric 'fid_fmnist' is '12', not a number",
        ),
    ],
)
def test_damaged_rows_are_one_message(
    line: str, problem: str, two_seed_run: tuple[Path, list[str]]
) -> None:
    out, args = two_seed_run
    results = out / "results.jsonl"
    before = results.read_text()
    results.write_text(before + line + "\n")
    with pytest.raises(RunFolderError, match="not a result row"):
        read_results(results)
    for command in (("report", out), ("status", out), tuple(args)):
        assert_one_error(invoke(*command), f"{results}:3: not a result row", problem)
    assert results.read_text() == before + line + "\n"  # no junk row appended by the rerun


# ---------------------------------------------------------------------- thresholds


@pytest.mark.parametrize("bound", ["nan", "inf", "-inf"])
def test_non_finite_threshold_is_a_bad_file(
    bound: str, two_seed_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out, _ = two_seed_run
    rules = tmp_path / "thresholds.toml"
    rules.write_text(f"[dcgan-small]\nfid_fmnist = {{ max = {bound} }}\n")
    assert_one_error(
        invoke("check", out, "--thresholds", rules),
        f"[dcgan-small] fid_fmnist.max = {float(bound)}: a bound must be finite",
    )


# ---------------------------------------------------------------------- a full or read-only disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``disk``."""
    st = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}  # fmt: skip


def test_full_disk_during_a_checkpoint(small_disk: Path, synthetic_dir: Path) -> None:
    out = small_disk / "run"
    args = ["run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small", "--out", out]
    assert invoke(*args).exit_code == 0  # seed 0: about 6 MB of checkpoint, grids, logs
    before = digests(out)
    filler = fill(small_disk, 256 << 10)  # 256 KiB left: seed 1's files cannot all fit
    full = invoke(*args, "--seeds", "2")
    assert_one_error(full, f"cannot write {out}/dcgan-small/seed1/", "No space left on device",
                     "Everything written before is intact")  # fmt: skip
    after = digests(out)
    assert {k: after[k] for k in before if k != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"
    }  # seed 0's checkpoint, logs and row untouched
    assert (
        not list(out.rglob("*.tmp"))
        and not (out / "dcgan-small" / "seed1" / "checkpoint.pt").exists()
    )
    filler.unlink()
    again = invoke(*args, "--seeds", "2")  # the locks were released: the same command goes on
    assert again.exit_code == 0, again.output
    assert [(r["seed"], r["status"]) for r in RunFolder(out).results()] == [(0, "ok"), (1, "ok")]


def test_read_only_folder_for_report_run_and_export(small_disk: Path, synthetic_dir: Path) -> None:
    out = small_disk / "run"
    args = ["run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small", "--out", out]
    assert invoke(*args).exit_code == 0
    before = digests(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert_one_error(invoke("report", out), f"cannot write {out}/report",
                         "Read-only file system")  # fmt: skip
        assert_one_error(invoke(*args, "--seeds", "2"), "Read-only file system")
        assert_one_error(
            invoke("reference", "export", "--kind", "fmnist", "--data-dir", synthetic_dir,
                   "--out", small_disk / "ref.npz"),
            f"cannot write {small_disk}/ref.npz: Read-only file system",
        )  # fmt: skip
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert digests(out) == before


def test_full_disk_without_a_mount(
    synthetic_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same guarantee where no tmpfs can be mounted: every fsync of a checkpoint fails."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and ".checkpoint.pt." in (
            os.readlink(f"/proc/self/fd/{fd}")
        ):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small",
                    "--out", out)  # fmt: skip
    assert_one_error(result, f"cannot write {out}/dcgan-small/seed0/checkpoint.pt: No space left")
    assert not list(out.rglob("*.tmp")) and not (out / "results.jsonl").exists()
