"""The documentation site builds strictly (a broken link, a missing page or a failing
reference fails) and its generated references cover every command and public API function."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.conftest import ROOT


def _commands(group: click.Group, prefix: str = "bench") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        out.append(f"{prefix}-{name}")
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}-{name}")
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extras are part of .[dev] (./setup.sh)")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_command_is_in_the_cli_reference(site: Path) -> None:
    from bench.cli import cli

    page = (site / "reference" / "cli" / "index.html").read_text()
    ids = set(re.findall(r'id="(bench-[a-z-]+)"', page))
    assert set(_commands(cli)) <= ids, sorted(set(_commands(cli)) - ids)


def test_every_public_api_function_is_in_the_api_reference(site: Path) -> None:
    import bench.api

    page = (site / "reference" / "api" / "index.html").read_text()
    public = [
        n for n, f in vars(bench.api).items()
        if inspect.isfunction(f) and f.__module__ == "bench.api" and not n.startswith("_")
    ]  # fmt: skip
    assert public and all(f'id="bench.api.{n}"' in page for n in public), public


def test_every_committed_result_folder_has_a_page(site: Path) -> None:
    for folder in (p for p in (ROOT / "reports" / "results").iterdir() if p.is_dir()):
        page = site / "results" / folder.name / "tables" / "index.html"
        assert page.is_file(), folder.name
        for fig in (folder / "figures").glob("*.png"):
            assert (site / "results" / folder.name / "figures" / fig.name).is_file()


def test_the_readme_shows_the_committed_headline_table() -> None:
    """The README's paper-protocol table is the headline table `bench report` wrote for the
    committed lucic run, line for line: a README never shows numbers the report does not."""
    tables = (ROOT / "reports" / "results" / "lucic" / "tables.md").read_text(encoding="utf-8")
    headline = tables.split("### Headline")[1].split("### All metrics")[0]
    rows = [line for line in headline.splitlines() if line.startswith("|")]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(rows) > 3 and "\n".join(rows) in readme
