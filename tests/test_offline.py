"""`bench offline pack` and the kit's install.sh: a machine without internet gets the data,
the Inception pool3 and wheels, checked, and bench finds them through env.sh."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from metrics.inception import OFFLINE_DIR, OFFLINE_FILE

needs_tools = pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("sha256sum")), reason="needs bash and sha256sum"
)


def fake_pool3(cache: Path, size: int) -> bytes:
    """A stand-in for the converted pool3 with the sha256 record `bench weights fetch` writes."""
    folder = cache / OFFLINE_DIR
    folder.mkdir(parents=True)
    blob = os.urandom(size)
    (folder / OFFLINE_FILE).write_bytes(blob)
    (folder / (OFFLINE_FILE + ".sha256")).write_text(hashlib.sha256(blob).hexdigest() + "\n")
    return blob


def probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (installable offline by pip)."""
    name, ver = "fmgan_kit_probe", "1.0"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
        f"Version: {ver}\n".encode(),
        f"{name}-{ver}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(data: bytes) -> str:
        raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return "sha256=" + raw.decode()

    record = "".join(f"{k},{digest(v)},{len(v)}\n" for k, v in files.items())
    path = folder / f"{name}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
        z.writestr(f"{name}-{ver}.dist-info/RECORD", record + f"{name}-{ver}.dist-info/RECORD,,\n")
    return path


def pip_python() -> str | None:
    """An interpreter with pip (the test venv may have none), for install.sh's wheel step."""
    for exe in (sys.executable, shutil.which("python3")):
        if (
            exe
            and subprocess.run([exe, "-m", "pip", "--version"], capture_output=True).returncode == 0
        ):
            return exe
    return None


@needs_tools
def test_a_split_kit_installs_offline_and_bench_finds_it(
    synthetic_dir: Path, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = pip_python()
    if python is None:
        pytest.skip("no pip to download or install the probe wheel with")
    blob = fake_pool3(isolated_env / "cache", 3 * 2**20 + 123)
    wheel = probe_wheel(tmp_path)
    kit = tmp_path / "kit"
    result = CliRunner().invoke(cli, ["offline", "pack", str(kit), "--data-dir", str(synthetic_dir),
                                      "--wheel", str(wheel), "--split-mb", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 parts" in result.output
    parts = sorted((kit / "cache" / OFFLINE_DIR).glob(OFFLINE_FILE + ".part*"))
    assert len(parts) == 4 and all(p.stat().st_size <= 2**20 for p in parts)
    assert not (kit / "cache" / OFFLINE_DIR / OFFLINE_FILE).exists()  # only its parts travel

    # the offline side: another folder, a private pip target, no index
    there = tmp_path / "elsewhere" / "kit"
    shutil.copytree(kit, there)
    site = tmp_path / "site"
    env = {**os.environ, "PYTHON": python, "PIP_TARGET": str(site), "PIP_NO_INDEX": "1"}
    proc = subprocess.run(["bash", str(there / "install.sh")], capture_output=True, text=True,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (site / "fmgan_kit_probe" / "__init__.py").read_text() == "VALUE = 42\n"
    assert (there / "cache" / OFFLINE_DIR / OFFLINE_FILE).read_bytes() == blob

    exported = dict(
        line.removeprefix("export ").replace('"', "").split("=", 1)
        for line in (there / "env.sh").read_text().splitlines()
    )
    for key, value in exported.items():
        monkeypatch.setenv(key, value)
    from bench.data import locate
    from metrics.inception import offline_pool3_weights

    assert locate() == there / "data"
    weights = offline_pool3_weights(Path(exported["FMGAN_CACHE_DIR"]))
    assert weights.sha256 == hashlib.sha256(blob).hexdigest()

    # a damaged part is refused, and copying it again repairs the kit
    good = (there / parts[1].relative_to(kit)).read_bytes()
    (there / parts[1].relative_to(kit)).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    proc = subprocess.run(["bash", str(there / "install.sh")], capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert proc.returncode == 1 and "do not match MANIFEST.sha256" in proc.stderr
    (there / parts[1].relative_to(kit)).write_bytes(good)
    proc = subprocess.run(["bash", str(there / "install.sh")], capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (there / parts[2].relative_to(kit)).unlink()
    proc = subprocess.run(["bash", str(there / "install.sh")], capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert proc.returncode == 1 and "missing" in proc.stderr


def test_pack_refuses_what_it_cannot_make(
    synthetic_dir: Path, isolated_env: Path, tmp_path: Path
) -> None:
    def pack(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(cli, ["offline", "pack", *args, "--no-wheels"])
        return r.exit_code, r.output

    code, out = pack(str(tmp_path / "kit"), "--data-dir", str(synthetic_dir))
    assert code == 2 and "bench weights fetch" in out and "--no-inception" in out  # no pool3
    code, out = pack(str(tmp_path / "kit"), "--data-dir", str(tmp_path / "empty"))
    assert code == 2, out
    code, out = pack(str(tmp_path / "kit"), "--no-inception")  # no data anywhere, no download
    assert code == 2 and "Fashion-MNIST not found" in out
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "precious.txt").write_text("keep")
    code, out = pack(str(busy), "--data-dir", str(synthetic_dir), "--no-inception")
    assert code == 2 and "not an empty folder" in out
    assert (busy / "precious.txt").read_text() == "keep"
    code, out = pack(str(tmp_path / "kit"), "--data-dir", str(synthetic_dir), "--no-inception")
    assert code == 0 and "4 files" in out and "Traceback" not in out
