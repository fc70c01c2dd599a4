"""``giropops version``: the version and the optional parts this install can use."""

from __future__ import annotations

import argparse

from giropops import __version__


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("version", help="show the version and platform")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform

    print(f"giropops {__version__} (Python {platform.python_version()}, {platform.machine()})")
    return 0
