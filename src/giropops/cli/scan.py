"""``giropops scan TARGET...``: many images into the fleet index, with a summary (see ``giropops.fleet``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giropops.cli import exitcodes
from giropops.cli._registry import transport_options
from giropops.cli.cves import add_filter_options, filters_from, vex_from
from giropops.cli.db import add_db_option, db_path
from giropops.errors import UsageError

if TYPE_CHECKING:  # the fleet scanner is imported by run, not by 'giropops scan --help'
    from giropops.fleet.scanner import ImageOutcome
    from giropops.fleet.sources import Shard, Target

SEVERITY_COLUMNS = ("critical", "high", "medium", "low", "unspecified")


def add_index_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", default=None, metavar="URL|PATH",
                   help="the fleet index: postgresql://USER@HOST/DB for a shared one, or a SQLite file "
                        "(default: fleet-index.sqlite3 in the user's cache directory)")


def _workers(text: str) -> int:
    from giropops.fleet.scanner import MAX_WORKERS

    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {MAX_WORKERS}, not {text[:20]!r}")
    return int(text)


def _shard(text: str) -> Shard:
    from giropops.fleet.sources import Shard

    try:
        return Shard.parse(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan many images (a registry, repositories, a list) into the fleet index")
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="HOST (every repository), HOST/REPO (every tag) or HOST/REPO:TAG|@DIGEST (one image)")
    p.add_argument("--from-file", type=Path, default=None, metavar="FILE",
                   help="more targets, one per line (# starts a comment)")
    p.add_argument("--repository", default=None, metavar="REGEX", help="only repositories matching REGEX")
    p.add_argument("--tag", default=None, metavar="REGEX", help="only tags matching REGEX")
    p.add_argument("--workers", type=_workers, default=4, metavar="N", help="images scanned at once (default 4)")
    p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="scan only share K (0 <= K < N) of the images, by a stable hash of their manifest digest")
    p.add_argument("--rescan", action="store_true", help="catalog images again even when the index has them")
    p.add_argument("--page-size", type=int, default=None, metavar="N", help="entries per catalog/tags page")
    # --insecure, --username, --password-stdin: every registry command's (cli.main, cli._registry)
    p.add_argument("--sbom-from-attestation", action="store_true",
                   help="take each image's SBOM from its cosign spdxjson/cyclonedx attestation, verified with "
                        "--key, and read no layer at all")
    p.add_argument("--key", default=None, metavar="PUB", help="with --sbom-from-attestation: the cosign public key")
    add_index_option(p)
    add_db_option(p)
    p.add_argument("--format", choices=["table", "jsonl"], default="table",
                   help="a summary table, or one JSON object per image on stdout")
    p.add_argument("--exit-code", "-e", action="store_true",
                   help=f"exit {exitcodes.FINDINGS} when any image has vulnerabilities left after the filters")
    add_filter_options(p)
    p.set_defaults(func=run)


def _json(o: ImageOutcome) -> dict[str, Any]:
    return {
        "digest": o.digest, "references": o.refs, "platform": o.platform, "status": o.status,
        "error": o.error or None, "base": o.base, "packages": o.packages, "layers_read": o.layers_read,
        "vulnerabilities": o.severity_counts(), "failed": o.failed,
        "findings": [
            {"id": f.id, "package": f.package, "type": f.package_type, "version": f.version,
             "severity": f.severity, "fixed_version": f.fixed_version}
            for f in o.briefs
        ],
    }


def _table(outcomes: list[ImageOutcome]) -> str:
    rows: list[tuple[str, ...]] = [("IMAGE", "DIGEST", "PKGS", "C", "H", "M", "L", "U", "STATUS")]
    for o in outcomes:
        counts = o.severity_counts()
        first = o.refs[0] if o.refs else "?"
        more = f" (+{len(o.refs) - 1})" if len(o.refs) > 1 else ""
        status = o.status if o.status != "error" else f"error: {o.error}"
        rows.append((first + more, (o.digest or "-")[:19], str(o.packages),
                     *(str(counts[s]) for s in SEVERITY_COLUMNS), status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from giropops.cli.progress import TerminalProgress
    from giropops.fleet.scanner import FleetScanner, ScanOptions
    from giropops.fleet.sources import expand, parse_target, targets_from_file
    from giropops.oci.model import Platform
    from giropops.oci.transport import registry_options
    from giropops.vuln.db.store import VulnDB

    targets: list[Target] = [parse_target(t) for t in args.targets]
    if args.from_file is not None:
        targets += targets_from_file(args.from_file)
    if not targets:
        raise UsageError("nothing to scan: name a registry, a repository or images, or use --from-file")
    if args.page_size is not None and args.page_size < 1:
        raise UsageError("--page-size must be at least 1")
    from giropops.fleet.index import open_index

    trust = None
    if args.sbom_from_attestation:
        if args.key is None:
            raise UsageError("--sbom-from-attestation needs --key PUB to verify the attestations with")
        from giropops.sign.attached import Trust
        from giropops.sign.keys import VerifyingKey

        trust = Trust(key=VerifyingKey.load(Path(args.key)))
    elif args.key is not None:
        raise UsageError("--key only applies with --sbom-from-attestation")

    options = ScanOptions(
        workers=args.workers, platform=Platform.parse(args.platform) if args.platform else None,
        shard=args.shard, rescan=args.rescan, filters=filters_from(args), vex=vex_from(args),
        registry=registry_options(transport_options(args)), keep_findings=args.format == "jsonl", sbom_trust=trust,
    )
    progress = TerminalProgress()
    with VulnDB(db_path(args)) as db:
        index = open_index(args.index)
        try:
            scanner = FleetScanner(index, db, options, progress)
            try:
                wanted = expand(targets, scanner.clients, args.repository, args.tag, args.page_size)
            finally:
                scanner.clients.close()
            outcomes = scanner.run(wanted)
        finally:
            index.close()
    if args.format == "jsonl":
        for o in outcomes:
            sys.stdout.write(json.dumps(_json(o), sort_keys=True) + "\n")
    else:
        sys.stdout.write(_table(outcomes))
        images = [o for o in outcomes if o.status != "error"]
        errors = [o for o in outcomes if o.status == "error"]
        scanned = sum(1 for o in images if o.status == "scanned")
        layers = sum(o.layers_read for o in images)
        shard = f" (shard {args.shard})" if args.shard else ""
        print(f"{len(images)} images{shard}: {scanned} catalogued ({layers} layers read), "
              f"{len(images) - scanned} already indexed; {len(errors)} errors; index {index.location}")
    if any(o.status == "error" for o in outcomes):
        return exitcodes.ERROR
    if args.exit_code and any(o.failed for o in outcomes):
        return exitcodes.FINDINGS
    return exitcodes.OK
