"""``giropops quickview IMAGE``: the image and its base image at a glance (like docker scout quickview)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from giropops.cli import exitcodes
from giropops.cli.cves import check_specs, write_output
from giropops.cli.db import add_db_option, db_path, open_scan_db, warn_if_stale
from giropops.errors import GiropopsError
from giropops.vuln.match import scan
from giropops.vuln.quickview import QuickView, pick_base, render
from giropops.vuln.scan import image_facts, sbom_for, view_for


def register(sub: Any) -> None:
    p = sub.add_parser("quickview", help="vulnerability counts of an image and its base image")
    p.add_argument("image", metavar="IMAGE",
                   help="an image source (REF, archive://, oci-dir://, ...), fs://DIR or sbom://FILE")
    p.add_argument("--base", action="append", default=[], metavar="IMAGE",
                   help="candidate base image(s) to match by annotation or layers (repeatable)")
    add_db_option(p)
    p.add_argument("--output", "-o", default=None, metavar="FILE")
    p.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                   help="platform to pick from a multi-platform image (default: this machine's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_specs(args.image, *args.base)
    sbom = sbom_for(args.image, args.platform)
    facts = image_facts(args.image, args.platform)
    candidates = [sbom_for(spec, args.platform) for spec in args.base]
    base, ref = pick_base(sbom, candidates, facts.annotations if facts else None)
    error = None
    if base is None and ref is not None and ref.name and not candidates:
        try:
            base = sbom_for(ref.name, args.platform)
        except GiropopsError as exc:  # the annotated base may be unreachable; say so, keep the image's view
            error = str(exc)
    with open_scan_db(db_path(args)) as db:
        image_view = view_for(scan(sbom, db))
        base_view = view_for(scan(base, db)) if base is not None else None
        warn_if_stale(db)
    write_output(render(QuickView(image_view, base_view, ref, error), args.image),
                 Path(args.output) if args.output else None)
    return exitcodes.OK
