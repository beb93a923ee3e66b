"""``bench offline pack``: an offline kit (data, Inception weights, wheels) for a machine
without internet."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.base import cli
from bench.cli.options import data_dir_option


@cli.group("offline")
def offline_group() -> None:
    """Prepare a machine without internet (a cluster's GPU node, an air-gapped box)."""


@offline_group.command("pack")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--wheel",
    "wheels",
    multiple=True,
    help="A pip requirement or wheel file to include; repeatable (default: torch-fidelity, "
    "setuptools and wheel at the versions installed here).",
)
@click.option("--no-wheels", is_flag=True, help="Include no wheels.")
@click.option(
    "--python-version",
    default=None,
    help="The offline machine's Python, e.g. 3.12, for wheels built per Python version.",
)
@click.option(
    "--split-mb",
    type=click.FloatRange(min=1),
    default=None,
    help="Cut files larger than this many MiB into parts (transfers with a size limit); "
    "install.sh joins them.",
)
@click.option(
    "--no-inception",
    is_flag=True,
    help="Leave out the TF-Inception pool3 (96 MB): the Inception metrics say unavailable.",
)
@data_dir_option
def pack_cmd(
    out: Path,
    wheels: tuple[str, ...],
    no_wheels: bool,
    python_version: str | None,
    split_mb: float | None,
    no_inception: bool,
    data_dir: Path | None,
) -> None:
    """Gather into OUT what an offline machine needs beside the code: the four Fashion-MNIST
    files, the converted TF-Inception pool3 and wheels, with MANIFEST.sha256 and install.sh.

    On the offline machine, in the repository: `bash OUT/install.sh` joins split files,
    checks every checksum, installs the wheels without an index and writes OUT/env.sh;
    `source OUT/env.sh` points bench at the kit's data and cache.
    """
    from bench.cli.base import Fail
    from bench.offline import pack

    if no_wheels and wheels:
        raise Fail("--wheel and --no-wheels exclude each other", 2)
    files = pack(
        out,
        None if data_dir is None else str(data_dir),
        [] if no_wheels else (list(wheels) or None),
        python_version,
        split_mb,
        not no_inception,
    )
    total = sum(f.size for f in files)
    parts = sum(len(f.parts) for f in files)
    click.echo(f"kit: {out} ({len(files)} files, {total / 2**20:.1f} MiB"
               + (f", {parts} parts" if parts else "") + ")")  # fmt: skip
    for f in files:
        click.echo(f"  {f.path}  {f.size / 2**20:.1f} MiB  sha256 {f.sha256[:12]}...")
    click.echo(f"offline side: bash {out}/install.sh && source {out}/env.sh")
