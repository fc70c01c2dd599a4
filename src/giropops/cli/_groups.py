"""Commands that only group subcommands (``giropops db``, ``index``, ``cache``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from giropops.cli import exitcodes


def add_group(sub: Any, name: str, help: str, dest: str, subcommands_help: str) -> Any:
    """The subparsers of a new command ``name``; the command alone prints its help to stderr (exit USAGE)."""
    parser = sub.add_parser(name, help=help)
    group = parser.add_subparsers(dest=dest, metavar="SUBCOMMAND", parser_class=type(parser), help=subcommands_help)
    parser.set_defaults(func=lambda args: _help(parser))
    return group


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE
