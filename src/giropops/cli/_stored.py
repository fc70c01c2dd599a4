"""A ``giropops sbom`` asked again of an unchanged archive, served before argparse is imported.

``giropops.sbom.results`` keeps the whole document of a request; ``cli/sbom.py`` serves it after
the full command line was parsed.  Parsing it costs more than serving it (argparse, gettext,
the command's module and the names it lists), so ``entry`` first hands the arguments of ``sbom``
here.  Only these exact shapes are recognised, each option at most once, in any order:

    sbom IMAGE [--format F | --format=F | -f F] [--output F | --output=F | -o F]
               [--platform P | --platform=P]

Anything else (another flag, an abbreviation, a repeated option, a value that starts with ``-``,
an empty ``--output``, a request that is not cacheable, a miss, an output directory that does
not exist, a write that fails) returns None, and ``entry`` runs the full command, which then does
exactly what it always did, errors included.  A hit writes what the full path writes, to the
same place and in the same way (``--output`` atomically: a temporary file renamed; else stdout),
and returns its exit code: the key, and so the document, is the one ``cli/sbom.py`` computes for
the same arguments (same spec, platform, format, no package types; ``results.request`` reads the
environment, ``SOURCE_DATE_EPOCH`` and every ``GIROPOPS_*`` variable, for both).

Imports: ``giropops.sbom.results`` (``os``, ``stat``, ``time``, ``zlib``), and on a hit the cache
directory's and atomic write's small modules.  No argparse, no dataclasses, no pathlib.
"""

from __future__ import annotations

import sys

_VALUED = {"--format": "format", "-f": "format", "--output": "output", "-o": "output", "--platform": "platform"}
_LONG = ("--format", "--output", "--platform")


def parse(arguments: list[str]) -> dict[str, str] | None:
    """``{"image": ..., "format": ..., "output": ..., "platform": ...}`` (the ones given) for the shapes in the
    module docstring, else None."""
    out: dict[str, str] = {}
    i = 0
    while i < len(arguments):
        word = arguments[i]
        if word.startswith("-"):
            name, eq, value = word.partition("=")
            if eq:
                if name not in _LONG:
                    return None
            else:
                if word not in _VALUED or i + 1 >= len(arguments):
                    return None
                value = arguments[i + 1]
                i += 1
            key = _VALUED[name]
            if key in out or value.startswith("-"):
                return None
            out[key] = value
        else:
            if "image" in out:
                return None
            out["image"] = word
        i += 1
    if "image" not in out or out.get("output") == "":
        return None
    return out


def _document(parsed: dict[str, str]) -> bytes | None:
    from giropops.sbom import results

    request = results.request(parsed["image"], parsed.get("platform"), parsed.get("format", "list"), frozenset())
    return None if request is None else results.load(request)


def serve_sbom(arguments: list[str]) -> int | None:
    """The exit code of ``giropops sbom ARGUMENTS`` once its stored document is written; None when the full
    command must run instead (nothing was written then)."""
    parsed = parse(arguments)
    if parsed is None:
        return None
    try:
        return _serve(parsed)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (``main.Terminated``): as ``main.run`` says them
        from giropops.cli import exitcodes
        from giropops.cli.main import Terminated

        terminated = isinstance(exc, Terminated)
        print(f"giropops: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return exitcodes.TERMINATED if terminated else exitcodes.INTERRUPTED


def _serve(parsed: dict[str, str]) -> int | None:
    try:
        data = _document(parsed)
    except Exception:  # noqa: BLE001 - whatever it is, the full path meets it again and says it its way
        return None
    if data is None:
        return None
    output = parsed.get("output")
    if output is None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        except BrokenPipeError:
            sys.stderr.close()  # as ``main.run``: stdout closed early is not an error
        return 0
    import os

    if not os.path.isdir(os.path.dirname(output.rstrip("/") or "/") or "."):
        return None  # the full path says which directory is missing
    # ``signal``'s own C module: the same functions, without the enum classes ``signal`` builds on import
    import _signal

    from giropops.cli.main import _on_sigterm
    from giropops.fileio import FOLLOW_UMASK, atomic_write

    previous = None
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:  # SIGTERM removes the temporary file, as in run
        try:
            previous = _signal.signal(_signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread: signals are not ours to handle
            previous = None
    try:
        atomic_write(output, data, FOLLOW_UMASK)  # no fsync, as cli.sbom (and Trivy)
    except OSError:
        return None  # nothing was written: the full path tries again and names the error
    finally:
        if previous is not None:
            _signal.signal(_signal.SIGTERM, previous)
    return 0


__all__ = ["parse", "serve_sbom"]
