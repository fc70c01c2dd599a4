"""``--format markdown``: the same content as the text report, for pull-request comments."""

from __future__ import annotations

from giropops.vuln.model import SEVERITIES
from giropops.vuln.report.view import (
    ReportView,
    counts_text,
    epss_text,
    human_size,
    kev_text,
    layer_text,
    purl_of,
    severity_text,
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _all_packages(view: ReportView) -> list[str]:
    """Every package of the target, vulnerable or not (Scout's markdown lists only the vulnerable ones)."""
    counts: dict[int, dict[str, int]] = {}
    for f in view.findings:
        c = counts.setdefault(id(f.package), dict.fromkeys(SEVERITIES, 0))
        c[f.severity.level] += 1
    empty = dict.fromkeys(SEVERITIES, 0)
    pkgs = sorted(view.sbom.packages, key=lambda p: (p.type, p.name, p.version))
    lines = [f"<details><summary>All {len(pkgs)} packages</summary>", "",
             "| Package | Version | Type | Vulnerabilities |", "|---|---|---|---|"]
    lines += [f"| {_cell(p.name)} | {_cell(p.version)} | {p.type} | {counts_text(counts.get(id(p), empty))} |"
              for p in pkgs]
    return [*lines, "", "</details>", ""]


def render(view: ReportView) -> str:
    s = view.sbom.subject
    lines = [
        "## Overview", "",
        "| | Analyzed Image |", "|---|---|",
        f"| Target | `{_cell(s.name)}` |",
        f"| digest | `{s.digest or 'unknown'}` |",
        f"| platform | {s.platform or 'unknown'} |",
        f"| vulnerabilities | {counts_text(view.counts())} |",
        f"| size | {human_size(s.size)} |",
        f"| packages | {len(view.sbom.packages)} |",
        "", "## Packages and Vulnerabilities", "",
    ]
    for pkg, findings in view.by_package():
        lines.append(f"<details><summary>{len(findings)} vulnerabilities in <code>{pkg.name} {pkg.version}</code>"
                     "</summary>")
        lines += ["", f"`{purl_of(pkg)}`", ""]
        if view.show_locations:
            lines += [f"- {_cell(layer_text(findings[0]))}"]
            lines += [f"- `{_cell(loc.path)}`" for loc in pkg.locations] or ["- location unknown"]
            lines.append("")
        epss_head = (" EPSS |", "---|") if view.show_epss else ("", "")
        lines += [f"| Severity | Vulnerability | Affected range | Fixed version | Status | Rating | Exploited |"
                  f"{epss_head[0]}", f"|---|---|---|---|---|---|---|{epss_head[1]}"]
        for f in findings:
            disputed = " (disputed)" if f.disputed else ""
            epss = f" {epss_text(f)} |" if view.show_epss else ""
            lines.append(f"| {f.severity.level.upper()} | {f.vuln_id}{disputed} | {_cell(f.affected_range)} | "
                         f"{_cell(f.fixed_version or 'not fixed')} | {f.status} | {_cell(severity_text(f))} | "
                         f"{_cell(kev_text(f)) or '-'} |{epss}")
        lines += ["", "</details>", ""]
    if view.suppressed:
        lines += ["## Suppressed by VEX", "", "| Vulnerability | Package | Justification |", "|---|---|---|"]
        for sup in view.suppressed:
            why = sup.statement.justification or sup.statement.impact_statement or sup.statement.status
            lines.append(f"| {sup.finding.vuln_id} | {sup.finding.package.name} {sup.finding.package.version} "
                         f"| {_cell(why)} |")
        lines.append("")
    lines += _all_packages(view)
    lines.append(f"**{len(view.findings)} vulnerabilities found in {len(view.by_package())} packages**")
    return "\n".join(lines) + "\n"
