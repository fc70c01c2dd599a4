"""Entry point of the ``giropops`` command.

Each command lives in a module of this package exposing ``register(subparsers)``;
``register`` adds a parser whose ``func`` default takes the parsed namespace
and returns an exit code.  Adding a command means adding its module name to
``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from giropops import __version__
from giropops.cli import exitcodes
from giropops.errors import GiropopsError

COMMAND_MODULES: tuple[str, ...] = (
    "version",
    "copy",
    "inspect",
    "sbom",
    "build",
    "generate_key_pair",
    "sign",
    "verify",
    "attest",
    "verify_attestation",
    "blob",
    "tree",
    "db",
    "cves",
    "quickview",
    "compare",
    "recommendations",
    "policy",
    "demo",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; 2 is reserved for findings (as Scout does)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """All commands; or, when ``command`` names a command module, only that one.

    Importing every command module (registry clients, crypto...) costs more than a
    whole ``giropops sbom`` of a small image on a warm cache; a command that is
    named on the command line only needs its own module.
    """
    parser = _Parser(
        prog="giropops",
        description="Build, inspect, catalog, scan and sign container images without a daemon.",
    )
    parser.add_argument("--version", action="version", version=f"giropops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = (command,) if command in COMMAND_MODULES else COMMAND_MODULES
    for name in names:
        module = importlib.import_module(f"giropops.cli.{name}")
        module.register(sub)
    if len(names) == 1 and command not in sub.choices:
        return build_parser()
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    return run(parser, parser.parse_args(arguments))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it cleans up (staging directories, temporary
    files) exactly as it does on Ctrl-C: every clean-up path handles ``BaseException``."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    import signal

    previous = None
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # an embedding program's handler is left alone
        with contextlib.suppress(ValueError):  # not the main thread: signals are not ours to handle
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code: int = func(args)
    except GiropopsError as exc:
        print(f"giropops: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("giropops: terminated", file=sys.stderr)
        return exitcodes.TERMINATED
    except KeyboardInterrupt:
        print("giropops: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): not an error worth a traceback.
        sys.stderr.close()
        return exitcodes.OK
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code


def entry() -> NoReturn:
    # Importing a command's modules makes many long-lived objects and no garbage: the cyclic
    # collector only slows that down (by ~10% of a short command), and walking those objects again
    # in every later full collection is wasted too, so it is off until then and they are frozen.
    gc.disable()
    arguments = sys.argv[1:]
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    gc.freeze()
    gc.enable()
    sys.exit(run(parser, args))


if __name__ == "__main__":
    entry()
