"""``giropops affected ID``: the indexed images an advisory hits (CVE, GHSA, GO-..., or any alias)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from giropops.cli import exitcodes
from giropops.cli.db import add_db_option, db_path
from giropops.cli.scan import add_index_option


def register(sub: Any) -> None:
    p = sub.add_parser("affected", help="which indexed images a vulnerability hits, with the fix per image")
    p.add_argument("vuln_id", metavar="ID", help="CVE-..., GHSA-..., GO-..., DSA-... or any alias")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--exit-code", "-e", action="store_true",
                   help=f"exit {exitcodes.FINDINGS} when any image is affected")
    add_index_option(p)
    add_db_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from giropops.fleet.index import open_index
    from giropops.fleet.query import affected
    from giropops.vuln.db.store import VulnDB

    with VulnDB(db_path(args)) as db:
        index = open_index(args.index)
        try:
            hits = affected(index, db, args.vuln_id.strip())
        finally:
            index.close()
    if args.format == "json":
        doc = [{"digest": h.image.digest, "references": [str(r) for r in h.image.refs],
                "platform": h.image.platform, "id": h.finding.vuln_id, "aliases": list(h.finding.aliases),
                "type": h.finding.package.type, "package": h.finding.package.name,
                "version": h.finding.package.version, "severity": h.finding.severity.level,
                "fixed_version": h.finding.fixed_version} for h in hits]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for h in hits:
            refs = ", ".join(str(r) for r in h.image.refs) or "(no reference)"
            f = h.finding
            fix = f"fixed in {f.fixed_version}" if f.fixed_version else "not fixed"
            print(f"{refs}  {h.image.digest}  {f.package.type}/{f.package.name} {f.package.version}  "
                  f"{f.severity.level}  {fix}")
        print(f"{len({h.image.digest for h in hits})} images affected by {args.vuln_id}", file=sys.stderr)
    if args.exit_code and hits:
        return exitcodes.FINDINGS
    return exitcodes.OK
