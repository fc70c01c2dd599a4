"""``giropops where PACKAGE[@VERSION|@RANGE]``: the indexed images holding a package, with locations."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from giropops.cli import exitcodes
from giropops.cli.scan import add_index_option


def register(sub: Any) -> None:
    p = sub.add_parser("where", help="which indexed images contain a package (see 'giropops scan')")
    p.add_argument("package", metavar="PACKAGE[@VERSION|@RANGE]",
                   help="a package name, optionally @1.2.3 or a range such as @<2.0 or @>=1.0,<2.0")
    p.add_argument("--type", dest="package_type", default=None, metavar="TYPE", help="only packages of TYPE (deb...)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_index_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from giropops.fleet.index import open_index
    from giropops.fleet.query import parse_package_query, where

    name, spec = parse_package_query(args.package)
    index = open_index(args.index)
    try:
        hits = where(index, name, spec, args.package_type)
    finally:
        index.close()
    if args.format == "json":
        doc = [{"digest": h.image.digest, "references": [str(r) for r in h.image.refs],
                "platform": h.image.platform, "type": h.package.type, "name": h.package.name,
                "version": h.package.version, "purl": h.package.purl, "locations": list(h.package.locations)}
               for h in hits]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return exitcodes.OK
    for h in hits:
        refs = ", ".join(str(r) for r in h.image.refs) or "(no reference)"
        print(f"{refs}  {h.image.digest}")
        print(f"    {h.package.type}/{h.package.name} {h.package.version}  {h.package.purl}")
        for loc in h.package.locations:
            print(f"      {loc}")
    images = len({h.image.digest for h in hits})
    print(f"{images} images", file=sys.stderr)
    return exitcodes.OK
