"""``giropops index rematch|list``: the fleet index without any registry traffic."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from giropops.cli import exitcodes
from giropops.cli._groups import add_group
from giropops.cli.db import add_db_option, db_path
from giropops.cli.scan import add_index_option


def register(sub: Any) -> None:
    isub = add_group(sub, "index", "the fleet index: list images, rematch them after 'db update'", "index_command",
                     "what to do with the index")

    p = isub.add_parser("rematch", help="match every stored SBOM against the current database; report changes")
    p.add_argument("--format", choices=["text", "json"], default="text")
    add_index_option(p)
    add_db_option(p)
    p.set_defaults(func=run_rematch)

    p_list = isub.add_parser("list", help="the indexed images and their references")
    add_index_option(p_list)
    p_list.set_defaults(func=run_list)


def run_rematch(args: argparse.Namespace) -> int:
    from giropops.fleet.index import open_index
    from giropops.fleet.query import rematch
    from giropops.vuln.db.store import VulnDB

    with VulnDB(db_path(args)) as db:
        index = open_index(args.index)
        try:
            changes = rematch(index, db)
        finally:
            index.close()
    if args.format == "json":
        doc = [{"digest": c.image.digest, "references": [str(r) for r in c.image.refs],
                "new": [{"id": f.vuln_id, "package": f.package, "severity": f.severity, "fixed_version": f.fixed}
                        for f in c.new],
                "gone": [{"id": f.vuln_id, "package": f.package} for f in c.gone]} for c in changes]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return exitcodes.OK
    for c in changes:
        refs = ", ".join(str(r) for r in c.image.refs) or "(no reference)"
        print(f"{refs}  {c.image.digest}")
        for f in c.new:
            fix = f"fixed in {f.fixed}" if f.fixed else "not fixed"
            print(f"    new   {f.vuln_id}  {f.package}  {f.severity}  {fix}")
        for f in c.gone:
            print(f"    gone  {f.vuln_id}  {f.package}")
    print(f"{len(changes)} images changed", file=sys.stderr)
    return exitcodes.OK


def run_list(args: argparse.Namespace) -> int:
    from giropops.fleet.index import open_index

    index = open_index(args.index)
    try:
        images = index.images()
    finally:
        index.close()
    for i in images:
        refs = ", ".join(str(r) for r in i.refs) or "(no reference)"
        print(f"{i.digest}  {i.platform}  {i.scanned_at}  {refs}")
    print(f"{len(images)} images", file=sys.stderr)
    return exitcodes.OK
