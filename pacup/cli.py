"""The ``pacup`` command line (Typer)."""

from __future__ import annotations

from typing import Optional

import typer

from . import __version__

app = typer.Typer(
    name="pacup",
    help="RGB-guided joint upsampling of depth maps and optical flow.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        typer.echo(f"pacup {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
):
    """RGB-guided joint upsampling of depth maps and optical flow."""


def main():
    app()
