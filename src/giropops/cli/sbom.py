"""``giropops sbom IMAGE``: what is inside an image, as a list or as SPDX / CycloneDX / our JSON."""

from __future__ import annotations

import sys

from giropops.cli._registry import transport_options
from giropops.errors import UsageError
from giropops.sbom.names import FORMATS, PACKAGE_TYPES, package_types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:  # the rest is imported by run: 'giropops sbom --help' needs only argparse
    import argparse
    from pathlib import Path
    from types import SimpleNamespace


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sbom",
        help="list the packages inside an image (SPDX, CycloneDX, JSON or a table)",
        description="Catalog the packages of an image, a directory (fs://DIR) or read an existing SBOM back "
        "(sbom://FILE): dpkg, apk, rpm, Python, npm, Go, Java, Ruby, Rust, .NET and PHP.",
    )
    p.add_argument("image", metavar="IMAGE", help="source spec: archive://FILE.tar, fs://DIR, sbom://FILE, ...")
    p.add_argument("--format", "-f", choices=FORMATS, default="list", help="output format (default: list)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="which image of a multi-platform index")
    p.add_argument(
        "--timestamp",
        action="store_true",
        help="record the creation time (SOURCE_DATE_EPOCH if set, else now); off by default so output is reproducible",
    )
    p.add_argument(
        "--only-package-type",
        action="append",
        metavar="TYPES",
        help="comma-separated: " + ", ".join(PACKAGE_TYPES) + " (repeatable)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the per-layer catalog cache")
    p.set_defaults(func=run)


def parse_plain(arguments: list[str]) -> SimpleNamespace | None:
    """The namespace the parser makes of ``sbom IMAGE`` with ``--format``, ``--output`` and ``--platform`` as
    ``cli._stored.parse`` reads them (a known format); None for anything else, which the parser then reads
    exactly as it always did (errors and ``--help`` included).  A cold ``giropops sbom`` then runs without
    argparse, gettext and building the parser."""
    if arguments[:1] != ["sbom"]:
        return None
    from giropops.cli._stored import parse

    parsed = parse(arguments[1:])
    if parsed is None or parsed.get("format", "list") not in FORMATS:
        return None
    from types import SimpleNamespace

    return SimpleNamespace(
        command="sbom", image=parsed["image"], format=parsed.get("format", "list"), output=parsed.get("output"),
        platform=parsed.get("platform"), timestamp=False, only_package_type=None, no_cache=False, func=run,
        # cli.main: every registry command's --timeout and registry flags
        registry_timeout=None, insecure=False, username=None, password_stdin=False,
    )


def _timestamp(asked: bool) -> str | None:
    import time

    from giropops.epoch import source_date_epoch

    sde = source_date_epoch()
    if sde is None and not asked:
        return None
    from giropops.sbom.formats import timestamp_from_epoch

    return timestamp_from_epoch(sde if sde is not None else int(time.time()))


def write_atomically(path: Path | str, data: bytes, *, fsync: bool = True) -> None:
    """``data`` in ``path`` whole or not at all (a temporary file renamed over it); ``fsync`` first unless
    told not to (an SBOM is not: Trivy writes its ``-o`` file without one, and it is made again at will)."""
    import os

    from giropops.fileio import FOLLOW_UMASK, atomic_write

    # the directory Path(path).parent names, without pathlib (a warm run imports nothing else of it)
    if not os.path.isdir(os.path.dirname(os.fspath(path).rstrip("/") or "/") or "."):
        from pathlib import Path

        given = Path(path)
        raise UsageError(f"{given}: directory {given.parent} does not exist")
    atomic_write(path, data, FOLLOW_UMASK, fsync=fsync)


def _write(args: argparse.Namespace, data: bytes) -> None:
    if args.output:
        try:
            write_atomically(args.output, data, fsync=False)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write: {exc.strerror}") from exc
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    from giropops.sbom import results

    timestamp = _timestamp(args.timestamp)
    words = [w for item in args.only_package_type or [] for w in item.split(",") if w.strip()]
    try:
        types = package_types(words)
    except ValueError as exc:
        raise UsageError(f"--only-package-type: {exc}") from exc
    # the same archive, unchanged, asked the same: the document written last time (giropops.sbom.results)
    cacheable = timestamp is None and not (args.no_cache or getattr(args, "password_stdin", False))
    request = results.request(args.image, args.platform, args.format, types) if cacheable else None
    if request is not None and (data := results.load(request)) is not None:
        _write(args, data)
        return 0

    import warnings

    from giropops.sbom import sbom_for
    from giropops.sbom.formats import EncodeOptions, encode, prepare

    options = EncodeOptions(timestamp=timestamp)
    shown: list[object] = []
    show = warnings.showwarning

    def counted(*warning: object, **where: object) -> None:
        shown.append(warning)  # a warm run must say what this one says: a run that warns is not stored
        show(*warning, **where)  # type: ignore[arg-type]

    warnings.showwarning = counted
    try:
        # the encoder and its license list are loaded while the layers' digests are still being proven
        sbom = sbom_for(args.image, args.platform, use_cache=not args.no_cache, options=transport_options(args),
                        meanwhile=lambda: prepare(args.format)).only_types(types)
        data = encode(sbom, args.format, options)
    finally:
        warnings.showwarning = show
    _write(args, data)
    if request is not None and not shown:
        results.store(request, data)
    return 0
