"""The ``crisp-edge`` group: every command module registers its commands on :data:`main`."""

from __future__ import annotations

from typing import Any

import click

from crisp_edge.errors import CrispError


class _Group(click.Group):
    """Turns crisp-edge errors into one line on stderr and exit status 1 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrispError as e:
            click.echo(f"crisp-edge: error: {e}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """crisp-edge: specialise image classifiers and run them on edge CPUs."""
