"""``giropops recommendations IMAGE``: the base image, a pending refresh, and better bases (Docker Scout's layout).

Exit codes: 0 (whatever was found), 1 on errors, 64 on usage errors.  Whether a refresh is
pending is a policy question: ``giropops policy`` turns it into an exit code.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from giropops.cli._names import RECO_CATALOG_ENV as CATALOG_ENV
from giropops.cli._registry import transport_options
from giropops.cli.copy import add_transport_args, parse_platform
from giropops.cli.cves import add_severity_source_option
from giropops.cli.db import add_scan_db_options, ensure_options, prepare_scan_db, warn_if_stale


def add_base_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-candidate", action="append", default=[], metavar="IMAGE",
                   help="an image the base may be, matched by layers when the image does not name its base "
                        "(repeatable; catalog images are tried too)")
    p.add_argument("--catalog", action="append", type=Path, default=[], metavar="FILE",
                   help=f"extra catalog of alternatives (YAML; also ${CATALOG_ENV}); 'replace: true' drops the "
                        "built-in one")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the per-digest scan cache")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recommendations", help="recommend a refreshed or better base image (like docker scout)")
    p.add_argument("image", metavar="IMAGE", help="image spec (REF, archive://, oci-dir://, ...)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--only-refresh", action="store_true", help="only say whether the base image tag moved")
    only.add_argument("--only-update", action="store_true", help="only list other base images")
    p.add_argument("--tag", default=None, help="only consider this tag of the base image's repository")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    add_scan_db_options(p)
    add_severity_source_option(p)
    add_base_options(p)
    add_transport_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from giropops.oci.transport import open_image, parse_spec
    from giropops.reco import deps
    from giropops.reco.catalog import load_catalog
    from giropops.reco.profile import Profiler, default_cache_dir
    from giropops.reco.recommend import recommend
    from giropops.reco.render import render_json, render_markdown, render_text

    platform = parse_platform(args.platform)
    options = transport_options(args)
    catalog = load_catalog(args.catalog)
    fetch = ensure_options(args)
    if not fetch.offline and not fetch.skip_update:
        # the base image and its alternatives share the image's distribution: its SBOM says what to fetch
        image = open_image(parse_spec(args.image), platform, options)
        prepare_scan_db(args, [deps.sbom_of(image, args.image)])
    db = deps.open_db(args.db)
    try:
        profiler = Profiler(db, None if args.no_cache else default_cache_dir(), args.severity_source)
        catalog_refs = [e.image for e in catalog.entries]
        recs = recommend(
            args.image, profiler, catalog, options=options, platform=platform,
            candidates=[*args.base_candidate, *catalog_refs],
            only_refresh=args.only_refresh, only_update=args.only_update, tag=args.tag,
        )
        warn_if_stale(db)
    finally:
        db.close()
    now = _dt.datetime.now(_dt.UTC)
    render = {"json": render_json, "markdown": render_markdown}.get(args.format, render_text)
    sys.stdout.write(render(recs, now))
    return 0
