"""``giropops compare IMAGE --to OTHER``: two images side by side (like docker scout compare)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from giropops.cli import exitcodes
from giropops.cli._registry import transport_options
from giropops.cli.cves import add_filter_options, check_specs, filters_from, vex_from, write_output
from giropops.cli.db import add_scan_db_options, open_scan_db, prepare_scan_db, warn_if_stale

EXIT_ON = ("vulnerability", "package")


def _exit_on(text: str) -> frozenset[str]:
    values = frozenset(v.strip() for v in text.split(",") if v.strip())
    bad = values - set(EXIT_ON)
    if bad or not values:
        raise argparse.ArgumentTypeError(f"expected {' or '.join(EXIT_ON)} (comma-separated), not {text[:50]!r}")
    return values


def register(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare two images: packages, env, labels and vulnerabilities")
    p.add_argument("image", metavar="IMAGE", help="the image to analyse")
    p.add_argument("--to", required=True, metavar="OTHER", help="the image to compare with (the baseline)")
    add_scan_db_options(p)
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--output", "-o", type=Path, default=None, metavar="FILE")
    p.add_argument("--ignore-unchanged", action="store_true", help="leave unchanged packages out")
    p.add_argument("--exit-on", type=_exit_on, action="append", default=[], metavar="vulnerability,package",
                   help=f"exit {exitcodes.FINDINGS} when vulnerabilities increased (vulnerability) or packages "
                        "changed (package) compared with OTHER; comma-separated or repeated")
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from giropops.vuln.compare import compare
    from giropops.vuln.match import scan
    from giropops.vuln.report import compare_report
    from giropops.vuln.scan import image_facts, sbom_for, view_for

    check_specs(args.image, args.to)
    filters = filters_from(args)
    vex = vex_from(args)
    options = transport_options(args)
    new_sbom, old_sbom = sbom_for(args.image, args.platform, options), sbom_for(args.to, args.platform, options)
    with open_scan_db(prepare_scan_db(args, [new_sbom, old_sbom])) as db:
        src = args.severity_source
        new_view = view_for(scan(new_sbom, db, severity_source=src), filters, vex, args.show_disputed, src)
        old_view = view_for(scan(old_sbom, db, severity_source=src), filters, vex, args.show_disputed, src)
        warn_if_stale(db)
    comparison = compare(new_view, old_view, image_facts(args.image, args.platform, options),
                         image_facts(args.to, args.platform, options))
    renderer = {"text": compare_report.render_text, "markdown": compare_report.render_markdown,
                "json": compare_report.render_json}[args.format]
    write_output(renderer(comparison, args.ignore_unchanged), args.output)
    exit_on = frozenset().union(*args.exit_on)
    if "vulnerability" in exit_on and comparison.vulnerabilities_increased:
        return exitcodes.FINDINGS
    if "package" in exit_on and any(ch.status != "unchanged" for ch in comparison.packages):
        return exitcodes.FINDINGS
    return exitcodes.OK
