"""``giropops cves IMAGE``: Docker Scout's ``cves`` (same layout, flags and exit codes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giropops.cli import _names, exitcodes
from giropops.cli._registry import transport_options
from giropops.cli.db import add_scan_db_options, open_scan_db, prepare_scan_db, warn_if_stale
from giropops.errors import UsageError

if TYPE_CHECKING:  # the scanner is imported by run, not by 'giropops cves --help'
    from giropops.oci.transport import TransportOptions
    from giropops.sbom.model import SBOM
    from giropops.vuln.report.filters import Filters, VexStatement
    from giropops.vuln.scan import BaseSplit


def _csv(values: list[str] | None) -> frozenset[str]:
    return frozenset(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def add_severity_source_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--severity-source", choices=_names.SEVERITY_SOURCES, default="vendor",
                   help="vendor: the distribution's or advisory publisher's rating where it gives one (Debian "
                        "urgency, GitHub, AlmaLinux), else CVSS (default); cvss: the CVSS view only")


def add_filter_options(p: argparse.ArgumentParser) -> None:
    add_severity_source_option(p)
    p.add_argument("--show-disputed", action="store_true",
                   help="also list and count disputed findings (records whose claim is doubtful), with the reason")
    p.add_argument("--ignore-status", action="append", metavar="STATUSES",
                   help=f"comma-separated statuses to leave out: {', '.join(_names.STATUSES)}")
    p.add_argument("--only-severity", action="append", metavar="SEVERITIES",
                   help="comma-separated: critical, high, medium, low, negligible, unspecified")
    fixed = p.add_mutually_exclusive_group()
    fixed.add_argument("--only-fixed", action="store_true", help="only vulnerabilities with a fixed version")
    fixed.add_argument("--only-unfixed", action="store_true", help="only vulnerabilities without a fix")
    p.add_argument("--only-package-type", action="append", metavar="TYPES",
                   help="comma-separated: deb, apk, rpm, python, npm, golang, maven, gem, cargo, nuget, composer")
    p.add_argument("--only-package", action="append", metavar="NAMES", help="comma-separated package names")
    p.add_argument("--only-cve-id", action="append", metavar="IDS", help="comma-separated vulnerability ids")
    p.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                   help="platform to pick from a multi-platform image (default: this machine's)")
    p.add_argument("--vex", action="append", type=Path, default=[], metavar="FILE",
                   help="VEX document (OpenVEX, CSAF 2.0 VEX or CycloneDX VEX): not_affected and fixed statements "
                        "suppress findings, affected and under_investigation ones are shown with them (repeatable)")
    p.add_argument("--vex-location", action="append", type=Path, default=[], metavar="DIR",
                   help="read every VEX document (*.json) in DIR, recursively (repeatable)")
    p.add_argument("--show-suppressed", action="store_true",
                   help="list the findings VEX suppressed, with the statement's status and justification")
    add_exploit_filter_options(p)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:50]!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text[:50]!r}")
    return value


def add_exploit_filter_options(p: argparse.ArgumentParser) -> None:
    """Issue 16: known exploited / EPSS / CVSS-metric filters (KEV and EPSS from 'giropops db import|update')."""
    p.add_argument("--only-cisa-kev", action="store_true",
                   help="only vulnerabilities in CISA's Known Exploited Vulnerabilities catalog")
    p.add_argument("--epss-score", type=_fraction, default=None, metavar="0..1",
                   help="only vulnerabilities whose EPSS score is at least this")
    p.add_argument("--epss-percentile", type=_fraction, default=None, metavar="0..1",
                   help="only vulnerabilities whose EPSS percentile is at least this")
    p.add_argument("--only-metric", action="append", metavar="METRICS",
                   help="comma-separated CVSS vector parts every kept vulnerability has, e.g. AV:N,PR:N")


def add_report_options(p: argparse.ArgumentParser) -> None:
    """Issue 16: what ``cves`` shows (EPSS, locations, order) and the base/own layer split."""
    p.add_argument("--epss", action="store_true", help="show each vulnerability's EPSS score and percentile")
    p.add_argument("--sort-by", choices=["severity", "epss"], default="severity",
                   help="order of packages and vulnerabilities (default: severity)")
    p.add_argument("--locations", action="store_true",
                   help="show the files each package was found in and its layer (diff_id)")
    p.add_argument("--only-vuln-packages", action="store_true",
                   help="with --format packages: list only packages that have vulnerabilities")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--ignore-base", action="store_true",
                       help="leave out vulnerabilities of packages in the base image's layers")
    where.add_argument("--only-base", action="store_true",
                       help="only vulnerabilities of packages in the base image's layers")
    p.add_argument("--base", action="append", default=[], metavar="IMAGE",
                   help="candidate base image(s) to match by layers when the image names none (repeatable)")


def filters_from(args: argparse.Namespace) -> Filters:
    from giropops.vuln.report.filters import Filters

    return Filters(
        severities=frozenset(s.lower() for s in _csv(args.only_severity)),
        fixed=True if args.only_fixed else (False if args.only_unfixed else None),
        package_types=frozenset(t.lower() for t in _csv(args.only_package_type)),
        packages=_csv(args.only_package),
        cve_ids=_csv(args.only_cve_id),
        ignore_status=frozenset(s.lower() for s in _csv(args.ignore_status)),
        kev=args.only_cisa_kev,
        epss_score=args.epss_score,
        epss_percentile=args.epss_percentile,
        metrics=frozenset(m.upper() for m in _csv(args.only_metric)),
        base=True if getattr(args, "only_base", False) else (False if getattr(args, "ignore_base", False) else None),
    )


def vex_from(args: argparse.Namespace) -> tuple[VexStatement, ...]:
    from giropops.vuln.report.vex import load_vex, load_vex_dir

    statements = [st for path in args.vex for st in load_vex(path)]
    statements += [st for directory in args.vex_location for st in load_vex_dir(directory)]
    return tuple(statements)


def check_specs(*specs: str) -> None:
    """Spec mistakes (a bare path, an unknown scheme) before the database is even opened."""
    from giropops.oci.transport import parse_spec

    for spec in specs:
        parse_spec(spec)


def write_output(text: str, output: Path | None) -> None:
    """stdout, or ``output`` written whole: a temporary file beside it renamed over it (no partial file);
    into it where it is when it is a device or a pipe (``/dev/null``, ``/dev/stdout``: ``fileio.output_target``)."""
    if output is None:
        sys.stdout.write(text)
        return
    from giropops.fileio import FOLLOW_UMASK, atomic_write

    try:
        atomic_write(output, text.encode("utf-8"), FOLLOW_UMASK)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc


def register(sub: Any) -> None:
    p = sub.add_parser("cves", help="list the vulnerabilities of an image (like docker scout cves)")
    p.add_argument("image", metavar="IMAGE", help="an image source (registry://, archive://, ...) or sbom://FILE")
    add_scan_db_options(p)
    p.add_argument("--format", choices=list(_names.REPORT_FORMATS), default="text")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE", help="write the report to FILE")
    p.add_argument("--exit-code", "-e", action="store_true",
                   help=f"exit {exitcodes.FINDINGS} when vulnerabilities remain after the filters")
    add_filter_options(p)
    add_report_options(p)
    p.set_defaults(func=run)


def _base_split(args: argparse.Namespace, sbom: SBOM, options: TransportOptions) -> BaseSplit | None:
    from giropops.vuln.scan import find_base, image_facts

    split = find_base(sbom, image_facts(args.image, args.platform, options), args.base, args.platform,
                      options=options)
    if split is None and (args.only_base or args.ignore_base):
        raise UsageError(f"cannot tell the base image of {args.image}: it names none (annotations, labels) and no "
                         "--base candidate's layers match")
    return split


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from giropops.vuln.match import scan
    from giropops.vuln.report import Format, render
    from giropops.vuln.scan import stored_sbom, stored_sbom_for, view_for, with_base

    # an unchanged archive scanned before: its stored inventory (vuln.scan.stored_sbom_for), and nothing of
    # the transports or the catalogers imported; never with registry credentials (as 'giropops sbom')
    cacheable = not getattr(args, "password_stdin", False)
    sbom = stored_sbom(args.image, args.platform) if cacheable else None
    if sbom is None:
        check_specs(args.image)
    filters = filters_from(args)
    vex = vex_from(args)
    options: TransportOptions | None = None
    if sbom is None:
        options = transport_options(args)
        sbom = stored_sbom_for(args.image, args.platform, options, store=cacheable)
    with open_scan_db(prepare_scan_db(args, [sbom])) as db:
        wanted = args.locations or args.only_base or args.ignore_base or args.base
        if wanted and options is None:
            options = transport_options(args)
        split = _base_split(args, sbom, options) if wanted and options is not None else None
        result = with_base(scan(sbom, db, severity_source=args.severity_source), split)
        stale = db.stale_warning()
    view = view_for(result, filters, vex, args.show_disputed, args.severity_source)
    view = replace(view, show_epss=args.epss, show_locations=args.locations, sort_by=args.sort_by,
                   only_vuln_packages=args.only_vuln_packages, show_suppressed=args.show_suppressed)
    write_output(render(view, Format(args.format)), args.output)
    warn_if_stale(stale)  # after the work: an error stays the only line
    if args.exit_code and view.findings:
        return exitcodes.FINDINGS
    return exitcodes.OK
