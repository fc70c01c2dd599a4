"""Renderings of a ``Comparison``: text (Scout-like), markdown, json."""

from __future__ import annotations

import json
from typing import Any

from giropops.vuln.compare import Comparison
from giropops.vuln.model import SEVERITIES
from giropops.vuln.report.json_report import finding_json
from giropops.vuln.report.view import ReportView, counts_text, human_size

_MARK = {"added": "+", "removed": "-", "changed": "↑", "unchanged": " "}


def _delta(new: int | None, old: int | None) -> str:
    if new is None or old is None or new == old:
        return ""
    return f"{'+' if new > old else ''}{new - old}"


def _rows(c: Comparison) -> list[tuple[str, str, str, str]]:
    a, b = c.image.sbom.subject, c.other.sbom.subject
    new_counts, old_counts = c.counts()
    rows = [
        ("Target", a.name, b.name, ""),
        ("  digest", a.digest or "unknown", b.digest or "unknown", ""),
        ("  platform", a.platform or "unknown", b.platform or "unknown", ""),
        ("  vulnerabilities", counts_text(new_counts), counts_text(old_counts),
         " ".join(f"{_delta(new_counts[s], old_counts[s]) or '0'}{s[0].upper() if s != 'unspecified' else '?'}"
                  for s in SEVERITIES)),
        ("  size", human_size(a.size), human_size(b.size), ""),
        ("  packages", str(len(c.image.sbom.packages)), str(len(c.other.sbom.packages)),
         _delta(len(c.image.sbom.packages), len(c.other.sbom.packages))),
    ]
    if a.size is not None and b.size is not None and a.size != b.size:
        sign = "+" if a.size > b.size else "-"
        rows[4] = (rows[4][0], rows[4][1], rows[4][2], f"{sign}{human_size(abs(a.size - b.size))}")
    return rows


def _changes(c: Comparison, ignore_unchanged: bool) -> list[tuple[str, str, str, str]]:
    out = []
    for ch in c.packages:
        if ignore_unchanged and ch.status == "unchanged":
            continue
        out.append((_MARK[ch.status], f"{ch.type}/{ch.name}", ", ".join(ch.new) or "-", ", ".join(ch.old) or "-"))
    return out


def render_text(c: Comparison, ignore_unchanged: bool = False) -> str:
    rows = _rows(c)
    w0 = max(len(r[0]) for r in rows) + 2
    w1 = max(len(r[1]) for r in rows) + 2
    w2 = max(len(r[2]) for r in rows) + 2
    lines = ["## Overview", "", f"{'':<{w0}}│ {'Analyzed Image':<{w1}}│ {'Comparison Image':<{w2}}│ Delta",
             f"{'─' * w0}┼{'─' * (w1 + 1)}┼{'─' * (w2 + 1)}┼{'─' * 20}"]
    lines += [f"{r[0]:<{w0}}│ {r[1]:<{w1}}│ {r[2]:<{w2}}│ {r[3]}" for r in rows]
    for title, diff in (("Environment Variables", c.env), ("Labels", c.labels)):
        lines += ["", f"## {title}", ""]
        if diff is None:
            lines.append("  unknown: an SBOM does not record them (compare images to see them)")
            continue
        lines += [f"  {'+' if old is None else '-' if new is None else '↑'} {k}={new if new is not None else old}"
                  for k, old, new in diff] or ["  no changes"]
    lines += ["", "## Packages and Vulnerabilities", ""]
    changes = _changes(c, ignore_unchanged)
    nw = max([len(x[1]) for x in changes] + [7])
    vw = max([len(x[2]) for x in changes] + [5])
    for mark, name, new, old in changes:
        lines.append(f"  {mark} {name:<{nw}}  {new:<{vw}}  {'' if new == old else '(was ' + old + ')'}".rstrip())
    lines += ["", f"## Vulnerabilities introduced ({len(c.introduced)})", ""]
    lines += [f"  + {f.severity.level.upper():<11} {f.vuln_id:<22} {f.package.name} {f.package.version}"
              for f in c.introduced] or ["  none"]
    lines += ["", f"## Vulnerabilities fixed ({len(c.fixed)})", ""]
    lines += [f"  - {f.severity.level.upper():<11} {f.vuln_id:<22} {f.package.name} {f.package.version}"
              for f in c.fixed] or ["  none"]
    return "\n".join(lines) + "\n"


def render_markdown(c: Comparison, ignore_unchanged: bool = False) -> str:
    lines = ["## Overview", "", "| | Analyzed Image | Comparison Image | Delta |", "|---|---|---|---|"]
    lines += [f"| {r[0].strip()} | {r[1]} | {r[2]} | {r[3]} |" for r in _rows(c)]
    lines += ["", "## Environment and labels", ""]
    if c.env is None or c.labels is None:
        lines.append("unknown: an SBOM does not record them")
    else:
        env_lines = [f"- env `{k}`: `{old}` → `{new}`" for k, old, new in c.env]
        label_lines = [f"- label `{k}`: `{old}` → `{new}`" for k, old, new in c.labels]
        lines += (env_lines + label_lines) or ["no changes"]
    lines += ["", "## Packages", "", "| | Package | Version | Was |", "|---|---|---|---|"]
    lines += [f"| {m} | {n} | {new} | {old} |" for m, n, new, old in _changes(c, ignore_unchanged)]
    lines += ["", f"## Vulnerabilities introduced ({len(c.introduced)})", ""]
    lines += [f"- {f.severity.level.upper()} {f.vuln_id} in `{f.package.name} {f.package.version}`"
              for f in c.introduced] or ["none"]
    lines += ["", f"## Vulnerabilities fixed ({len(c.fixed)})", ""]
    lines += [f"- {f.severity.level.upper()} {f.vuln_id} in `{f.package.name} {f.package.version}`"
              for f in c.fixed] or ["none"]
    return "\n".join(lines) + "\n"


def _side(v: ReportView) -> dict[str, Any]:
    s = v.sbom.subject
    return {"name": s.name, "digest": s.digest, "platform": s.platform, "size": s.size,
            "packages": len(v.sbom.packages), "vulnerabilities": v.counts()}


def document(c: Comparison, ignore_unchanged: bool = False) -> dict[str, Any]:
    new_counts, old_counts = c.counts()
    return {
        "schema": "giropops/compare/v1",
        "image": _side(c.image),
        "other": _side(c.other),
        "delta": {s: new_counts[s] - old_counts[s] for s in SEVERITIES},
        "vulnerabilities_increased": c.vulnerabilities_increased,
        "env": None if c.env is None else [{"name": k, "old": old, "new": new} for k, old, new in c.env],
        "labels": None if c.labels is None else [{"name": k, "old": old, "new": new} for k, old, new in c.labels],
        "packages": [{"type": ch.type, "name": ch.name, "status": ch.status, "old": list(ch.old), "new": list(ch.new)}
                     for ch in c.packages if not (ignore_unchanged and ch.status == "unchanged")],
        "introduced": [finding_json(f) for f in c.introduced],
        "fixed": [finding_json(f) for f in c.fixed],
    }


def render_json(c: Comparison, ignore_unchanged: bool = False) -> str:
    return json.dumps(document(c, ignore_unchanged), indent=2) + "\n"
