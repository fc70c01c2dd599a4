"""Synthetic apk advisories (Alpine, Wolfi, Chainguard) in the shapes of the real feeds.

The real Wolfi and Chainguard feeds may not be redistributed (CC BY-NC-ND 4.0 plus Chainguard's
terms) and Alpine's secdb conversion states no licence, so ``tests/data`` holds none of them.
These records take their place: the same OSV shapes the real feeds use (SOURCES of the full data):

- Alpine ``ALPINE-<CVE>`` records, ``upstream: [CVE]``, ``[introduced 0, fixed V]`` per release;
  ``not_affected`` records without ranges (secfixes key "0").
- Wolfi/Chainguard ``CGA-*`` records with ``aliases: [CVE]``: fixed ranges, unresolved ones
  (``[introduced 0]`` only, ``database_specific.status = affected_no_fix``), ``not_affected``,
  ``fixed "0"``, ``last_affected`` and a withdrawn record.

Fixed versions come from one ladder for every package, so each package set meets versions below,
at and above what it holds.  The expected findings are still the oracle's, over these same files.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

LADDER = ["0.9-r0", "1.0-r1", "1.2.5-r0", "1.3.1-r1", "1.36.1-r15", "1.36.1-r16", "2.6.1-r0", "3.1.4-r5",
          "3.1.4-r6", "8.5.0-r1", "20240705-r0", "99.0-r0"]

ALPINE_ORIGINS = ["busybox", "musl", "openssl", "zlib", "apk-tools", "ca-certificates", "expat", "sqlite", "curl",
                  "python3", "libxml2", "git", "ncurses"]
APK_NAMES = ["glibc", "openssl", "libcrypto3", "busybox", "python-3.12", "ca-certificates", "expat", "zlib", "curl",
             "git", "wolfi-baselayout", "podman", "prometheus-2.53", "cilium-1.15"]


def _affected(eco: str, name: str, ranges: list[dict[str, Any]] | None) -> dict[str, Any]:
    aff: dict[str, Any] = {"package": {"ecosystem": eco, "name": name}}
    if ranges is not None:
        aff["ranges"] = ranges
    return aff


def _fixed(v: str) -> list[dict[str, Any]]:
    return [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": v}]}]


def alpine_records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    n = 0
    for release in ("v3.19", "v3.12"):
        for name in ALPINE_ORIGINS:
            for v in LADDER:
                n += 1
                cve = f"CVE-2099-{10000 + n}"
                out.append({"id": f"ALPINE-{cve}", "upstream": [cve], "modified": "2025-01-04T00:00:00Z",
                            "affected": [_affected(f"Alpine:{release}", name, _fixed(v))]})
            n += 1
            cve = f"CVE-2099-{10000 + n}"
            out.append({"id": f"ALPINE-{cve}", "upstream": [cve], "modified": "2025-01-04T00:00:00Z",
                        "affected": [_affected(f"Alpine:{release}", name, None)],
                        "database_specific": {"status": "not_affected"}})
    return out


def apk_vendor_records(eco: str, base: int, modified: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    n = base

    def rec(name: str, ranges: list[dict[str, Any]] | None, **extra: Any) -> None:
        nonlocal n
        n += 1
        out.append({"id": f"CGA-{eco.lower()}-{n:05d}", "aliases": [f"CVE-2099-{n}"], "modified": modified,
                    "affected": [_affected(eco, name, ranges)], **extra})

    for name in APK_NAMES:
        for v in LADDER:
            rec(name, _fixed(v))
        rec(name, [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            database_specific={"status": "affected_no_fix", "wolfi_event": "pending-upstream-fix"})
        rec(name, None, database_specific={"status": "not_affected",
                                           "false_positive_type": "component-vulnerability-mismatch"})
        rec(name, _fixed("0"))
        rec(name, [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-r0"}, {"last_affected": "3.2.0-r0"}]}])
        rec(name, [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}], withdrawn="2025-02-01T00:00:00Z")
    return out


def write_apk_advisories(out_dir: Path) -> list[Path]:
    """Write the synthetic Alpine, Wolfi and Chainguard files into ``out_dir``; returns their paths."""
    files = {
        "alpine-synthetic.osv.jsonl.gz": alpine_records(),
        "wolfi-synthetic.osv.jsonl.gz": apk_vendor_records("Wolfi", 20000, "2026-01-07T00:00:00Z"),
        "chainguard-synthetic.osv.jsonl.gz": apk_vendor_records("Chainguard", 30000, "2025-02-19T00:00:00Z"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, records in files.items():
        path = out_dir / name
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in records))
        paths.append(path)
    return paths
