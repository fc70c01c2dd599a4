"""``giropops cves IMAGE``: Docker Scout's ``cves`` (same layout, flags and exit codes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from giropops.cli import exitcodes
from giropops.cli._registry import transport_options
from giropops.cli.db import add_db_option, db_path, open_scan_db, warn_if_stale
from giropops.errors import UsageError
from giropops.oci.transport import parse_spec
from giropops.vuln.model import SEVERITY_SOURCES, STATUSES
from giropops.vuln.report import Format, render
from giropops.vuln.report.filters import Filters, VexStatement, load_openvex
from giropops.vuln.scan import scan_spec, view_for


def _csv(values: list[str] | None) -> frozenset[str]:
    return frozenset(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def add_severity_source_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--severity-source", choices=SEVERITY_SOURCES, default="vendor",
                   help="vendor: the distribution's or advisory publisher's rating where it gives one (Debian "
                        "urgency, GitHub, AlmaLinux), else CVSS (default); cvss: the CVSS view only")


def add_filter_options(p: argparse.ArgumentParser) -> None:
    add_severity_source_option(p)
    p.add_argument("--show-disputed", action="store_true",
                   help="also list and count disputed findings (records whose claim is doubtful), with the reason")
    p.add_argument("--ignore-status", action="append", metavar="STATUSES",
                   help=f"comma-separated statuses to leave out: {', '.join(STATUSES)}")
    p.add_argument("--only-severity", action="append", metavar="SEVERITIES",
                   help="comma-separated: critical, high, medium, low, negligible, unspecified")
    fixed = p.add_mutually_exclusive_group()
    fixed.add_argument("--only-fixed", action="store_true", help="only vulnerabilities with a fixed version")
    fixed.add_argument("--only-unfixed", action="store_true", help="only vulnerabilities without a fix")
    p.add_argument("--only-package-type", action="append", metavar="TYPES", help="comma-separated: deb, apk, python")
    p.add_argument("--only-package", action="append", metavar="NAMES", help="comma-separated package names")
    p.add_argument("--only-cve-id", action="append", metavar="IDS", help="comma-separated vulnerability ids")
    p.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                   help="platform to pick from a multi-platform image (default: this machine's)")
    p.add_argument("--vex", action="append", type=Path, default=[], metavar="FILE",
                   help="OpenVEX document; not_affected statements suppress matches (repeatable)")


def filters_from(args: argparse.Namespace) -> Filters:
    return Filters(
        severities=frozenset(s.lower() for s in _csv(args.only_severity)),
        fixed=True if args.only_fixed else (False if args.only_unfixed else None),
        package_types=frozenset(t.lower() for t in _csv(args.only_package_type)),
        packages=_csv(args.only_package),
        cve_ids=_csv(args.only_cve_id),
        ignore_status=frozenset(s.lower() for s in _csv(args.ignore_status)),
    )


def vex_from(args: argparse.Namespace) -> tuple[VexStatement, ...]:
    return tuple(st for path in args.vex for st in load_openvex(path))


def check_specs(*specs: str) -> None:
    """Spec mistakes (a bare path, an unknown scheme) before the database is even opened."""
    for spec in specs:
        parse_spec(spec)


def write_output(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc}") from exc


def register(sub: Any) -> None:
    p = sub.add_parser("cves", help="list the vulnerabilities of an image (like docker scout cves)")
    p.add_argument("image", metavar="IMAGE", help="an image source (registry://, archive://, ...) or sbom://FILE")
    add_db_option(p)
    p.add_argument("--format", choices=[f.value for f in Format], default=Format.TEXT.value)
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="write the report to FILE")
    p.add_argument("--exit-code", "-e", action="store_true",
                   help=f"exit {exitcodes.FINDINGS} when vulnerabilities remain after the filters")
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_specs(args.image)
    filters = filters_from(args)
    vex = vex_from(args)
    with open_scan_db(db_path(args)) as db:
        result = scan_spec(args.image, db, args.platform, args.severity_source, transport_options(args))
        warn_if_stale(db)
    view = view_for(result, filters, vex, args.show_disputed, args.severity_source)
    write_output(render(view, Format(args.format)), args.output)
    if args.exit_code and view.findings:
        return exitcodes.FINDINGS
    return exitcodes.OK
