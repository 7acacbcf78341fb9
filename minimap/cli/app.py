"""The `minimap` group: usage errors as one line; global options before the subcommand; help when called alone."""

from __future__ import annotations

import sys
from typing import Any

import click

from minimap import defaults
from minimap.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    _global_options,
)
from minimap.exceptions import MinimapError


class Cli(click.Group):
    """Click's usage errors as one line, like every other error."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except MinimapError as e:  # raised before a command runs, e.g. a bad MINIMAP_* variable
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=Cli, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="minimap")
@_global_options
@click.pass_context
def main(ctx: click.Context, db_url: str | None, verbose: bool, debug: bool) -> None:
    """minimap: dynamic task mapping -- fan out, cap, retry exactly the instance that failed."""
    ctx.obj = {"db_url": db_url, "verbose": verbose, "debug": debug}
    if ctx.invoked_subcommand is None:  # `minimap` alone: the help, and no error for asking
        click.echo(ctx.get_help())
        ctx.exit(EXIT_OK)
    defaults.check()
