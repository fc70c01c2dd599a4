"""``giropops sbom IMAGE``: what is inside an image, as a list or as SPDX / CycloneDX / our JSON."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from giropops.cli._registry import transport_options
from giropops.errors import UsageError
from giropops.sbom.names import FORMATS, PACKAGE_TYPES, package_types

if TYPE_CHECKING:  # the rest is imported by run: 'giropops sbom --help' needs only argparse
    from pathlib import Path


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


def _timestamp(asked: bool) -> str | None:
    import time

    from giropops.epoch import source_date_epoch
    from giropops.sbom.formats import timestamp_from_epoch

    sde = source_date_epoch()
    if sde is not None:
        return timestamp_from_epoch(sde)
    if asked:
        return timestamp_from_epoch(int(time.time()))
    return None


def write_atomically(path: Path, data: bytes) -> None:
    from pathlib import Path

    from giropops.fileio import FOLLOW_UMASK, atomic_write

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {directory} does not exist")
    atomic_write(path, data, FOLLOW_UMASK, fsync=True)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from giropops.sbom import sbom_for
    from giropops.sbom.formats import EncodeOptions, encode

    options = EncodeOptions(timestamp=_timestamp(args.timestamp))
    words = [w for item in args.only_package_type or [] for w in item.split(",") if w.strip()]
    try:
        types = package_types(words)
    except ValueError as exc:
        raise UsageError(f"--only-package-type: {exc}") from exc
    sbom = sbom_for(args.image, args.platform, use_cache=not args.no_cache,
                    options=transport_options(args)).only_types(types)
    data = encode(sbom, args.format, options)
    if args.output:
        try:
            write_atomically(Path(args.output), data)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write: {exc.strerror}") from exc
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0
