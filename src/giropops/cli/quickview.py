"""``giropops quickview IMAGE``: the image and its base image at a glance (like docker scout quickview)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giropops.cli import exitcodes
from giropops.cli._registry import transport_options
from giropops.cli.cves import add_severity_source_option, check_specs, write_output
from giropops.cli.db import add_scan_db_options, open_scan_db, prepare_scan_db, warn_if_stale
from giropops.errors import GiropopsError

if TYPE_CHECKING:  # the scanner is imported by the functions that use it, not by --help
    from giropops.oci.transport import TransportOptions
    from giropops.sbom.model import SBOM
    from giropops.sign.dsse import InTotoStatement


def register(sub: Any) -> None:
    p = sub.add_parser("quickview", help="vulnerability counts of an image and its base image")
    p.add_argument("image", metavar="IMAGE",
                   help="an image source (REF, archive://, oci-dir://, ...), fs://DIR or sbom://FILE")
    p.add_argument("--base", action="append", default=[], metavar="IMAGE",
                   help="candidate base image(s) to match by annotation or layers (repeatable)")
    add_scan_db_options(p)
    p.add_argument("--output", "-o", default=None, metavar="FILE")
    p.add_argument("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
                   help="platform to pick from a multi-platform image (default: this machine's)")
    add_severity_source_option(p)
    p.set_defaults(func=run)


def _statements(image: str, sbom: SBOM, options: TransportOptions) -> list[InTotoStatement] | None:
    """The statements attached to the image, UNVERIFIED: where it says it came from is only a hint."""
    from giropops.oci.model import Digest
    from giropops.oci.transport import parse_spec
    from giropops.reco.deps import statements_unverified  # signing code: loaded only when metadata is silent

    digest = sbom.subject.digest
    if digest is None:
        return None
    return statements_unverified(parse_spec(image), Digest.parse(digest), options)


def run(args: argparse.Namespace) -> int:
    from giropops.vuln.match import scan
    from giropops.vuln.quickview import QuickView, pick_base, render
    from giropops.vuln.scan import BaseSplit, image_facts, sbom_for, view_for, with_base

    check_specs(args.image, *args.base)
    options = transport_options(args)
    sbom = sbom_for(args.image, args.platform, options)
    facts = image_facts(args.image, args.platform, options)
    candidates = [sbom_for(spec, args.platform, options) for spec in args.base]
    base, ref = pick_base(sbom, candidates, facts.annotations if facts else None, facts.labels if facts else None,
                          statements=lambda: _statements(args.image, sbom, options) if facts else None)
    error = None
    if base is None and ref is not None and ref.name and not candidates:
        try:
            base = sbom_for(ref.name, args.platform, options)
        except GiropopsError as exc:  # the annotated base may be unreachable; say so, keep the image's view
            error = str(exc)
    with open_scan_db(prepare_scan_db(args, [sbom, base])) as db:
        src = args.severity_source
        split = BaseSplit(frozenset(base.subject.diff_ids), base.subject.name, ref.how) \
            if base is not None and ref is not None and base.subject.diff_ids else None
        image_view = view_for(with_base(scan(sbom, db, severity_source=src), split), severity_source=src)
        base_view = view_for(scan(base, db, severity_source=src), severity_source=src) if base is not None else None
        warn_if_stale(db)
    write_output(render(QuickView(image_view, base_view, ref, error), args.image),
                 Path(args.output) if args.output else None)
    return exitcodes.OK
