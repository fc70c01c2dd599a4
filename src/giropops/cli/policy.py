"""``giropops policy IMAGE``: built-in policies, each pass / fail / no data with the reason.

Exit codes (for CI): 0 every enabled policy passed (or had no data, unless the policy file
says ``no_data: fail``); 2 (``FINDINGS``) a policy failed; 1 an error; 64 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from giropops.cli import exitcodes
from giropops.cli._names import FAIL, NODATA, PASS
from giropops.cli._registry import transport_options
from giropops.cli.copy import add_transport_args, parse_platform
from giropops.cli.cves import add_severity_source_option
from giropops.cli.db import add_scan_db_options, prepare_scan_db, warn_if_stale
from giropops.errors import VulnError

if TYPE_CHECKING:  # imported by the functions that use them, not by --help
    from giropops.policy.evaluate import PolicyReport
    from giropops.sbom.model import SBOM

_MARK = {PASS: "✓", FAIL: "✗", NODATA: "?"}
_WORD = {PASS: "passed", FAIL: "FAILED", NODATA: "no data"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="check an image against policies (exit 2 when one fails)")
    p.add_argument("image", metavar="IMAGE", help="image spec (REF, archive://, oci-dir://, ...)")
    p.add_argument("--policy", type=Path, default=None, metavar="FILE",
                   help="policy file (YAML): enable/disable policies, thresholds, licence list")
    p.add_argument("--key", type=Path, default=None, metavar="FILE",
                   help="cosign public key for the signature and SBOM attestation policies")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--base-candidate", action="append", default=[], metavar="IMAGE",
                   help="an image the base may be, matched by layers (repeatable)")
    p.add_argument("--catalog", action="append", type=Path, default=[], metavar="FILE",
                   help="extra catalog of images tried as base candidates")
    add_scan_db_options(p)
    add_severity_source_option(p)
    add_transport_args(p)
    p.set_defaults(func=run)


def render_text(report: PolicyReport) -> str:
    out = [f"Policy results for {report.image}", f"  digest {report.digest}", ""]
    for r in report.results:
        out.append(f"  {_MARK[r.status]} {_WORD[r.status]:<8} {r.title} [{r.name}]")
        out.append(f"      {r.reason}")
        out.extend(f"        - {d}" for d in r.details[:20])
        if len(r.details) > 20:
            out.append(f"        ... and {len(r.details) - 20} more")
    counts = {s: sum(1 for r in report.results if r.status == s) for s in (PASS, FAIL, NODATA)}
    out += ["", f"  {counts[PASS]} passed, {counts[FAIL]} failed, {counts[NODATA]} without data"]
    return "\n".join(out) + "\n"


def render_markdown(report: PolicyReport) -> str:
    out = [f"## Policy results for `{report.image}`", "", f"Digest: `{report.digest}`", "",
           "| Policy | Result | Reason |", "|---|---|---|"]
    for r in report.results:
        reason = r.reason.replace("|", "\\|")
        out.append(f"| {r.title} (`{r.name}`) | {_MARK[r.status]} {_WORD[r.status]} | {reason} |")
    return "\n".join(out) + "\n"


def _warn_if_stale(path: Path) -> None:
    """The stale-database warning of every scan; a missing or broken database is the policy's own error."""
    from giropops.vuln.db import store

    try:
        with store.VulnDB(path) as db:
            warn_if_stale(db)
    except VulnError:
        pass


def _prepare(args: argparse.Namespace, sbom: SBOM) -> None:
    prepare_scan_db(args, [sbom])


def run(args: argparse.Namespace) -> int:
    from giropops.policy.config import load_config
    from giropops.policy.evaluate import evaluate, report_json
    from giropops.reco.catalog import load_catalog
    from giropops.vuln.db import store

    cfg = load_config(args.policy)
    catalog = load_catalog(args.catalog)
    report = evaluate(
        args.image, cfg, options=transport_options(args), platform=parse_platform(args.platform),
        key=args.key, db_path=args.db, candidates=[*args.base_candidate, *(e.image for e in catalog.entries)],
        severity_source=args.severity_source, prepare_db=lambda sbom: _prepare(args, sbom),
    )
    if "fixable-vulnerabilities" in cfg.enabled:
        _warn_if_stale(args.db if args.db is not None else store.default_path())
    if args.format == "json":
        sys.stdout.write(json.dumps(report_json(report), indent=2) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(report))
    else:
        sys.stdout.write(render_text(report))
    return exitcodes.FINDINGS if report.failed else exitcodes.OK
