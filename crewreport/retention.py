"""Retention: closed reports are removed after a configurable time (placeholder until issue 4 lands)."""
from __future__ import annotations

import click


@click.command("purge")
def purge_command() -> None:
    """Remove reports closed more than RETENTION_DAYS ago."""
    raise click.ClickException("not built yet")
