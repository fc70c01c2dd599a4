"""Entry point of the ``giropops`` command.

Each command lives in a module of this package exposing ``register(subparsers)``;
``register`` adds a parser whose ``func`` default takes the parsed namespace
and returns an exit code.  Adding a command means adding its module name to
``COMMAND_MODULES`` and its import to ``_command``.

``entry`` builds no parser at all for the commonest command lines: ``--version``, a stored
``giropops sbom`` result (``cli._stored``), a replayed warm push (``cli._replay``), and the plain
shapes of ``copy``/``pull``/``push`` and ``sbom`` (``parse_plain`` in their modules: the namespace
the parser would make; anything else goes to the parser).  Importing argparse and building a parser
costs as much as a warm push's own work.
"""

from __future__ import annotations

import gc
import sys
import warnings

from giropops import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:  # typing costs a start-up; annotations are strings here
    import argparse
    from collections.abc import Sequence
    from types import SimpleNamespace
    from typing import Any, NoReturn, Protocol

    class _Command(Protocol):
        def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...

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
    "scan",
    "where",
    "affected",
    "index",
    "cache",
)


#: Commands that never talk to a registry; every other one takes ``--timeout`` and the registry flags
#: (``--insecure``, ``--username``, ``--password-stdin``: ``giropops.cli._registry``).
OFFLINE_COMMANDS = frozenset({"version", "generate-key-pair", "db", "demo", "where", "affected", "index", "cache"})


def _positive_seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text[:50]!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text[:50]!r}")
    return value


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    from giropops import timeouts

    parser.add_argument(
        "--timeout", dest="registry_timeout", type=_positive_seconds, default=None, metavar="SECONDS",
        help=f"give up on a registry request (retries included) after SECONDS, and on a blob transfer "
             f"slower than {timeouts.MIN_BLOB_RATE // 1024} KiB/s for {timeouts.RATE_WINDOW:g} s (or SECONDS "
             f"when shorter) (default {timeouts.DEFAULT_REQUEST_TIMEOUT:g})",
    )


_parser_class: type[argparse.ArgumentParser] | None = None
#: The width of the help formatters whose width is never read (``_Parser``): any will do.
_UNREAD_WIDTH = 78


def _Parser(**kwargs: Any) -> argparse.ArgumentParser:
    """An ``argparse.ArgumentParser`` that exits ``exitcodes.USAGE`` on usage errors: argparse exits 2, which
    is reserved for findings (as Scout does).  The class is made on first use: ``entry`` serves a stored
    ``giropops sbom`` result (``giropops.cli._stored``) without importing argparse at all."""
    global _parser_class
    if _parser_class is None:
        import argparse

        from giropops.cli import exitcodes

        class Parser(argparse.ArgumentParser):
            # argparse makes a help formatter for every add_argument (to check the metavar) and for
            # add_subparsers (the sub-commands' prog); its default width asks shutil for the terminal's,
            # importing shutil (with bz2, lzma...) on every run.  Neither use reads the width, so those
            # formatters get a fixed one; help, usage and error texts still get the terminal's.
            _width_unread = False

            def _get_formatter(self) -> argparse.HelpFormatter:
                if self._width_unread:
                    formatter_class: Any = self.formatter_class  # every HelpFormatter takes a width
                    made: argparse.HelpFormatter = formatter_class(prog=self.prog, width=_UNREAD_WIDTH)
                    return made
                return super()._get_formatter()

            def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
                self._width_unread = True
                try:
                    return super().add_argument(*args, **kwargs)
                finally:
                    self._width_unread = False

            def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction[Any]:
                # the prog made then is the usage of this parser's positionals (none here): never wrapped
                self._width_unread = self.usage is None and not self._get_positional_actions()
                try:
                    return super().add_subparsers(**kwargs)
                finally:
                    self._width_unread = False

            def error(self, message: str) -> NoReturn:
                self.print_usage(sys.stderr)
                self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")

        Parser.__name__ = Parser.__qualname__ = "_Parser"
        _parser_class = Parser
    return _parser_class(**kwargs)


def _describe(sub: argparse._SubParsersAction[Any]) -> None:
    """``giropops COMMAND --help`` starts with what the command does: its one-line help unless it has more."""
    import argparse
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, parser in sub.choices.items():
        if not parser.description and helps.get(name):
            text = str(helps[name])
            parser.description = text[0].upper() + text[1:] + "."
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action)


def _command(name: str) -> _Command:
    """The module of command ``name``, imported only when asked for (an explicit table, no dynamic import)."""
    if name == "version":
        from giropops.cli import version

        return version
    if name == "copy":
        from giropops.cli import copy

        return copy
    if name == "inspect":
        from giropops.cli import inspect

        return inspect
    if name == "sbom":
        from giropops.cli import sbom

        return sbom
    if name == "build":
        from giropops.cli import build

        return build
    if name == "generate_key_pair":
        from giropops.cli import generate_key_pair

        return generate_key_pair
    if name == "sign":
        from giropops.cli import sign

        return sign
    if name == "verify":
        from giropops.cli import verify

        return verify
    if name == "attest":
        from giropops.cli import attest

        return attest
    if name == "verify_attestation":
        from giropops.cli import verify_attestation

        return verify_attestation
    if name == "tree":
        from giropops.cli import tree

        return tree
    if name == "db":
        from giropops.cli import db

        return db
    if name == "cves":
        from giropops.cli import cves

        return cves
    if name == "quickview":
        from giropops.cli import quickview

        return quickview
    if name == "compare":
        from giropops.cli import compare

        return compare
    if name == "recommendations":
        from giropops.cli import recommendations

        return recommendations
    if name == "policy":
        from giropops.cli import policy

        return policy
    if name == "demo":
        from giropops.cli import demo

        return demo
    if name == "blob":
        from giropops.cli import blob

        return blob
    if name == "scan":
        from giropops.cli import scan

        return scan
    if name == "where":
        from giropops.cli import where

        return where
    if name == "affected":
        from giropops.cli import affected

        return affected
    if name == "index":
        from giropops.cli import index

        return index
    if name == "cache":
        from giropops.cli import cache

        return cache
    raise KeyError(name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """All commands; or, when ``command`` names a command module, only that one.

    Importing every command module (registry clients, crypto...) costs more than a
    whole ``giropops sbom`` of a small image on a warm cache; a command that is
    named on the command line only needs its own module.
    """
    from giropops.cli._registry import add_registry_options

    parser = _Parser(
        prog="giropops",
        description="Build, inspect, catalog, scan and sign container images without a daemon.",
    )
    parser.add_argument("--version", action="version", version=f"giropops {__version__}")
    # every command parser is a _Parser; the command modules only need it to be an ArgumentParser
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=type(parser),
        help="one of these ('giropops COMMAND --help' for its arguments)")
    names = (command,) if command in COMMAND_MODULES else COMMAND_MODULES
    for name in names:
        _command(name).register(sub)
    for command, command_parser in sub.choices.items():
        if command not in OFFLINE_COMMANDS:
            add_timeout_option(command_parser)
            add_registry_options(command_parser)
    _describe(sub)
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


_show_other_warning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """The library's ``GiropopsWarning``s as one line each; anything else as Python shows it."""
    from giropops.errors import GiropopsWarning

    if issubclass(category, GiropopsWarning):
        print(f"giropops: warning: {message}", file=sys.stderr, flush=True)
    else:
        _show_other_warning(message, category, filename, lineno, file, line)  # type: ignore[arg-type]


def run(parser: argparse.ArgumentParser | None, args: argparse.Namespace | SimpleNamespace) -> int:
    """Run the command ``args`` names (``parser``: to print its help when it names none)."""
    from giropops.cli import exitcodes
    from giropops.errors import GiropopsError

    warnings.showwarning = _show_warning
    if getattr(args, "registry_timeout", None) is not None:
        from giropops import timeouts

        timeouts.set_request_timeout(args.registry_timeout)
    func = getattr(args, "func", None)
    if func is None:
        (parser or build_parser()).print_help(sys.stderr)
        return exitcodes.USAGE
    import _signal  # signal's C module: the signal module adds enums (a start-up cost) and nothing used here

    previous = None
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:  # an embedding program's handler is left alone
        try:
            previous = _signal.signal(_signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread: signals are not ours to handle
            previous = None
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
            _signal.signal(_signal.SIGTERM, previous)
    return code


def entry() -> NoReturn:
    # Importing a command's modules makes many long-lived objects and no garbage: the cyclic
    # collector only slows that down (by ~10% of a short command), and walking those objects again
    # in every later full collection is wasted too, so it is off until then and they are frozen.
    arguments = sys.argv[1:]
    if arguments == ["--version"]:
        # what argparse's version action prints, without building a parser of every command for it
        sys.stdout.write(f"giropops {__version__}\n")
        sys.exit(0)
    if arguments[:1] == ["sbom"]:
        # the same sbom request on an unchanged archive: the stored document, before argparse is even
        # imported; None when anything is unusual (the full path below then does exactly what it did)
        from giropops.cli._stored import serve_sbom

        served = serve_sbom(arguments[1:])
        if served is not None:
            sys.exit(served)
    if arguments[:1] in (["copy"], ["push"]):
        # a push of an unchanged archive, replayed from what the last one concluded (cli._replay); None
        # when anything is unusual or the registry says otherwise (nothing was PUT: the full path runs)
        from giropops.cli._replay import exit_now, serve_push

        served = serve_push(arguments)
        if served is not None:
            exit_now(served)
    gc.disable()
    # the plain shapes of copy/pull/push and sbom, parsed without argparse (their modules' parse_plain);
    # anything else: the parser
    plain = None
    if arguments[:1] in (["copy"], ["pull"], ["push"]):
        from giropops.cli.copy import parse_plain

        plain = parse_plain(arguments)
    elif arguments[:1] == ["sbom"]:
        from giropops.cli.sbom import parse_plain

        plain = parse_plain(arguments)
    if plain is not None:
        gc.freeze()
        gc.enable()
        code = run(None, plain)
        if arguments[:1] == ["sbom"]:
            # The process ends next, and Python's exit runs a full collection over every object still
            # tracked (~1 ms after a cold sbom: its modules, caches and tables).  Frozen, they are not
            # walked; they are freed as always.  No sbom object needs a collection to finish its work:
            # the output and the cache files are written and closed by now (atomic writes).
            gc.freeze()
        if arguments[0] in ("copy", "pull", "push"):
            from giropops.cli.copy import exit_now  # no interpreter teardown after a copy (cli.copy)

            exit_now(code)
        sys.exit(code)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    gc.freeze()
    gc.enable()
    sys.exit(run(parser, args))


if __name__ == "__main__":
    entry()
