"""Failure modes (docs/failure-modes.md): torn result lines, damaged files of our own formats,
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
from click.testing import Result

from bench.errors import RunFolderError
from bench.fsutil import append_line
from bench.runs import RunFolder, read_results, torn_tail
from tests.conftest import invoke_caught

TINY = ["--profile", "smoke", "--kimg", "0.256", "--device", "cpu", "--no-progress",
        "--inception-samples", "0"]  # fmt: skip


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
    result = invoke_caught(*args)
    assert result.exit_code == 0, result.output
    return out, [str(a) for a in args]


def test_torn_row_is_reported_and_recomputed(two_seed_run: tuple[Path, list[str]]) -> None:
    out, args = two_seed_run
    results = out / "results.jsonl"
    whole = RunFolder(out).results()
    text = results.read_text()
    results.write_text(text[: len(text) - 40])  # seed 1's row cut short by a kill
    for command in (("report", out), ("status", out)):
        result = invoke_caught(*command)
        assert result.exit_code == 0 and f"{results}:2: torn last line" in result.output, (
            result.output
        )
    rerun = invoke_caught(*args)
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
        assert_one_error(invoke_caught(*command), f"{results}:3: not a result row", problem)
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
        invoke_caught("check", out, "--thresholds", rules),
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
    assert invoke_caught(*args).exit_code == 0  # seed 0: about 6 MB of checkpoint, grids, logs
    before = digests(out)
    filler = fill(small_disk, 256 << 10)  # 256 KiB left: seed 1's files cannot all fit
    full = invoke_caught(*args, "--seeds", "2")
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
    again = invoke_caught(
        *args, "--seeds", "2"
    )  # the locks were released: the same command goes on
    assert again.exit_code == 0, again.output
    assert [(r["seed"], r["status"]) for r in RunFolder(out).results()] == [(0, "ok"), (1, "ok")]


def test_read_only_folder_for_report_run_and_export(small_disk: Path, synthetic_dir: Path) -> None:
    out = small_disk / "run"
    args = ["run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small", "--out", out]
    assert invoke_caught(*args).exit_code == 0
    before = digests(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert_one_error(invoke_caught("report", out), f"cannot write {out}/report",
                         "Read-only file system")  # fmt: skip
        assert_one_error(invoke_caught(*args, "--seeds", "2"), "Read-only file system")
        assert_one_error(
            invoke_caught("reference", "export", "--kind", "fmnist", "--data-dir", synthetic_dir,
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
    result = invoke_caught("run", *TINY, "--data-dir", synthetic_dir, "--variants", "dcgan-small",
                    "--out", out)  # fmt: skip
    assert_one_error(result, f"cannot write {out}/dcgan-small/seed0/checkpoint.pt: No space left")
    assert not list(out.rglob("*.tmp")) and not (out / "results.jsonl").exists()


# ---------------------------------------------------------------------- input that can never train


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kimg", "inf"], "inf is not a finite number"),
        (["--kimg", "nan"], "nan is not a finite number"),
        (["--set", "optim.lr_g=nan"], "learning rates must be positive and finite"),
        (["--set", "optim.lr_d=inf"], "learning rates must be positive and finite"),
        (["--set", "arch.ngf=0"], "arch.ngf = 0 must be a positive count"),
        (["--set", "arch.ndf=-8"], "arch.ndf = -8 must be a positive count"),
        (["--set", "optim.eps=-1e-8"], "Adam eps must be finite and >= 0"),
        (["--set", "optim.betas=0.5,1.0"], "Adam betas must be two numbers in [0, 1)"),
        (["--set", "batch_size=100000"], "has 640 training images (classes [0, 1, 2, 3"),
    ],
)
def test_untrainable_input_is_refused_before_any_folder(
    args: list[str], needle: str, synthetic_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = invoke_caught("run", "--profile", "smoke", "--device", "cpu", "--no-progress",
                    "--data-dir", synthetic_dir, "--variants", "dcgan-small", "--out", out,
                    *args)  # fmt: skip
    assert_one_error(result, needle)
    assert not out.exists()  # no folder, no row


def test_empty_training_set_is_refused(tmp_path: Path) -> None:
    from tests.conftest import make_dataset_dir

    data = make_dataset_dir(tmp_path / "tiny", n_train_per_class=2)  # 20 images < batch 128
    assert_one_error(
        invoke_caught("run", *TINY, "--data-dir", data, "--variants", "dcgan-small", "--out",
               tmp_path / "run"),
        "variant 'dcgan-small' has 20 training images", "but a batch of 128: it cannot train",
    )  # fmt: skip
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- damaged files of ours


def test_damaged_checkpoint_config_and_reference(
    two_seed_run: tuple[Path, list[str]], tmp_path: Path, synthetic_dir: Path
) -> None:
    import torch

    out, args = two_seed_run
    job = out / "dcgan-small" / "seed1"
    ckpt = job / "checkpoint.pt"
    original = ckpt.read_bytes()
    seed1_rows = [r for r in RunFolder(out).results() if r["seed"] == 1]
    extend = [*args, "--extend", "--kimg", "0.512"]

    state = torch.load(ckpt, weights_only=True)
    torch.save({k: v for k, v in state.items() if k not in ("G_ema", "opt_d")}, ckpt)
    assert_one_error(invoke_caught(*extend), f"{ckpt}: damaged checkpoint, no G_ema, opt_d")
    assert_one_error(invoke_caught("score", job, "--data-dir", synthetic_dir, "--samples", "100"),
                     f"{ckpt}: damaged checkpoint (no recipe or no G_ema weights)")  # fmt: skip

    other = dict(state, G={k: v[..., :1] if v.dim() else v for k, v in state["G"].items()})
    torch.save(other, ckpt)  # tensors of another shape: another architecture
    assert_one_error(
        invoke_caught(*extend), f"{ckpt}: its contents do not fit variant 'dcgan-small'"
    )
    torch.save(dict(state, G_ema=other["G"]), ckpt)
    assert_one_error(invoke_caught("score", job, "--data-dir", synthetic_dir, "--samples", "100"),
                     f"{ckpt}: its G_ema weights do not fit variant 'dcgan-small'")  # fmt: skip
    ckpt.write_bytes(original)
    # seed 0 extended meanwhile; seed 1 got no junk row for its damaged checkpoint
    assert [r for r in RunFolder(out).results() if r["seed"] == 1] == seed1_rows

    config = out / "config.json"
    good = config.read_text()
    config.write_text(json.dumps({**json.loads(good), "run": ["profile", "smoke"]}))
    assert_one_error(invoke_caught(*args), f"{config}: not a run configuration of fmgan-bench "
                     "('run' is not a dict)")  # fmt: skip
    config.write_text("[1, 2]")
    assert_one_error(invoke_caught(*args), "(not an object)")
    config.write_text(good)

    ref = tmp_path / "ref.npz"
    import numpy as np

    from bench.reference import FORMAT

    np.savez(ref, features=np.zeros((4, 8), np.float32), labels=np.zeros(0, np.int64),
             protocol=np.array(json.dumps({"format": FORMAT, "kind": "fmnist"})))  # fmt: skip
    assert_one_error(invoke_caught("score", job, "--data-dir", synthetic_dir, "--samples", "100",
                            "--reference-stats", ref),
                     f"{ref}: its protocol lacks extractor, weights_sha256, reference")  # fmt: skip


# ---------------------------------------------------------------------- stale files, report paths


def test_stale_temporary_files_are_cleaned_on_resume(
    two_seed_run: tuple[Path, list[str]],
) -> None:
    out, args = two_seed_run
    stale = [out / "dcgan-small" / "seed0" / ".checkpoint.pt.k1ll3d.tmp",
             out / "dcgan-small" / "seed0" / "grids" / ".step0000004-kimg0.5.png.x.tmp",
             out / ".config.json.abc123.tmp"]  # fmt: skip
    for p in stale:
        p.write_bytes(b"half a file")
    result = invoke_caught(*args, "--extend", "--kimg", "0.512")
    assert result.exit_code == 0, result.output
    assert not [p for p in stale if p.exists()]


def test_report_reads_only_files_inside_the_run_folders(
    two_seed_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out, _ = two_seed_run
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret bytes that must not be embedded")
    results = out / "results.jsonl"
    rows = [json.loads(x) for x in results.read_text().splitlines()]
    rows[0]["interpolation"]["strip"] = str(secret)  # absolute
    rows[1]["paths"]["losses"] = "../../etc/passwd"  # leads out
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke_caught("report", out)
    assert result.exit_code == 0, result.output
    html = (out / "report" / "report.html").read_text()
    import base64

    assert base64.b64encode(secret.read_bytes())[:24].decode() not in html
    assert "Files left out" in html and "Files left out" in result.output
    assert f"{secret} (named by a row of {out}; outside it)" in result.output
    assert "../../etc/passwd (named by a row" in result.output
