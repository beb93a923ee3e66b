"""The ``bench`` click group and its error handling: every user mistake (a bad value,
missing data, a locked or conflicting run folder) ends in one ``Error:`` line and a non-zero
exit status, never a traceback."""

from __future__ import annotations

from typing import Any

import click

from bench import __version__
from bench.errors import BenchError, disk_error
from bench.harness import Interrupted
from bench.signals import terminate_unwinds


class Fail(click.ClickException):
    """A BenchError rendered by click: 'Error: <message>' and the error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BenchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            raise Fail(str(exc), exc.exit_code) from None
        except OSError as exc:
            disk = disk_error(exc)  # a full or read-only disk anywhere: one line, exit 2
            if disk is None:
                raise
            raise Fail(str(disk), disk.exit_code) from None
        except (Interrupted, KeyboardInterrupt) as exc:
            click.echo(
                f"\ninterrupted{': ' + str(exc) if str(exc) else ''}. Finished jobs are in "
                "results.jsonl; run the same command again to resume.",
                err=True,
            )
            ctx.exit(130)


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fmgan-bench")
def cli() -> None:
    """fmgan-bench: train every GAN recipe for Fashion-MNIST under one harness and compare.

    Typical use: `bench list`, then `bench run --all` (CPU default profile `quick`).
    """
    from models.plugins import plugin_errors

    for message in plugin_errors():  # an installed plugin that failed: the rest still work
        click.echo(f"warning: {message}; its variants are not available", err=True)


# ---------------------------------------------------------------------- shared options


def main() -> None:
    """Console-script entry point. SIGTERM (a scheduler, ``kill``) unwinds like Ctrl-C."""
    terminate_unwinds()
    cli(prog_name="bench")
