"""Docker Scout's terminal layout for ``cves`` (default and ``--format packages``)."""

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
    vex_text,
)


def _overview(view: ReportView) -> list[str]:
    s = view.sbom.subject
    rows = [
        ("Target", s.name),
        ("  digest", s.digest or "unknown"),
        ("  platform", s.platform or "unknown"),
        ("  vulnerabilities", counts_text(view.counts())),
        ("  size", human_size(s.size)),
        ("  packages", str(len(view.sbom.packages))),
    ]
    width = max(len(k) for k, _ in rows) + 2
    lines = ["## Overview", "", f"{'':<{width}}│  Analyzed Image", f"{'─' * width}┼{'─' * 40}"]
    lines += [f"{k:<{width}}│  {v}" for k, v in rows]
    return lines


def render_cves(view: ReportView) -> str:
    groups = view.by_package()
    lines = [
        f"    ✓ {len(view.sbom.packages)} packages indexed",
        f"    {'✗' if view.findings else '✓'} Detected {len(groups)} vulnerable packages with a total of "
        f"{len(view.findings)} vulnerabilities",
        "",
    ]
    lines += _overview(view)
    lines += ["", "## Packages and Vulnerabilities", ""]
    for pkg, findings in groups:
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in findings:
            counts[f.severity.level] += 1
        badge = counts_text(counts)
        lines.append(f"  {badge:<18} {pkg.name} {pkg.version}")
        lines.append(purl_of(pkg))
        if view.show_locations:
            lines.append(f"    Layer          : {layer_text(findings[0])}")
            lines += [f"    Location       : {loc.path}" for loc in pkg.locations] or ["    Location       : unknown"]
        lines.append("")
        for f in findings:
            kev = " [KEV]" if f.kev is not None else ""
            lines.append(f"    ✗ {f.severity.level.upper()} {f.vuln_id}{kev}{' (DISPUTED)' if f.disputed else ''}")
            if f.summary:
                lines.append(f"      {f.summary[:100]}")
            lines.append(f"      Severity       : {severity_text(f)}")
            lines.append(f"      Affected range : {f.affected_range}")
            lines.append(f"      Fixed version  : {f.fixed_version or 'not fixed'}")
            lines.append(f"      Status         : {f.status}")
            if f.disputed:
                lines.append(f"      Disputed       : {f.disputed}")
            if f.kev is not None:
                lines.append(f"      Exploited      : {kev_text(f)}")
            if view.show_epss:
                lines.append(f"      EPSS           : {epss_text(f)}")
            if f.vex is not None:
                note = vex_text(f.vex.status, f.vex.justification, f.vex.impact_statement, f.vex.document)
                lines.append(f"      VEX            : {note}")
            if f.cvss_severity.score is not None:
                lines.append(f"      CVSS Score     : {f.cvss_severity.score:.1f}")
            if f.cvss_severity.vector:
                lines.append(f"      CVSS Vector    : {f.cvss_severity.vector}")
            lines.append("")
    if view.suppressed:
        if view.show_suppressed:
            lines.append(f"{len(view.suppressed)} vulnerabilities suppressed by VEX")
            for s in view.suppressed:
                st = s.statement
                pkg = s.finding.package
                why = vex_text(st.status, st.justification, st.impact_statement, st.document)
                lines.append(f"    - {s.finding.severity.level.upper()} {s.finding.vuln_id} in {pkg.name} "
                             f"{pkg.version}: {why}")
        else:
            lines.append(f"{len(view.suppressed)} vulnerabilities suppressed by VEX (list them with --show-suppressed)")
        lines.append("")
    if view.not_affected:
        lines.append(f"{len(view.not_affected)} vulnerabilities the distribution marks not affected (not counted)")
        for f in view.not_affected:
            lines.append(f"    - {f.vuln_id} in {f.package.name} {f.package.version}: not_affected "
                         f"({', '.join(f.advisory_ids)})")
        lines.append("")
    hidden = [f for f in view.disputed if f not in view.findings]
    if hidden:
        lines.append(f"{len(hidden)} disputed vulnerabilities not counted (list them with --show-disputed)")
        lines.append("")
    c = view.counts()
    exploited = sum(1 for f in view.findings if f.kev is not None)
    if exploited:
        lines.append(f"{exploited} known exploited vulnerabilities (CISA KEV catalog)")
    lines.append(f"{len(view.findings)} vulnerabilities found in {len(groups)} packages "
                 f"(severity source: {view.severity_source})")
    for level in SEVERITIES:
        lines.append(f"  {level.upper():<12}{c[level]}")
    for note in view.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def render_packages(view: ReportView) -> str:
    """Every package of the target, one line each, with its vulnerability counts."""
    counts: dict[int, dict[str, int]] = {}
    for f in view.findings:
        c = counts.setdefault(id(f.package), dict.fromkeys(SEVERITIES, 0))
        c[f.severity.level] += 1
    pkgs = sorted(view.sbom.packages, key=lambda p: (p.type, p.name, p.version))
    if view.only_vuln_packages:
        pkgs = [p for p in pkgs if id(p) in counts]
    name_w = max([len("Name")] + [len(p.name) for p in pkgs])
    ver_w = max([len("Version")] + [len(p.version) for p in pkgs])
    lines = [f"  {'Name':<{name_w}}  {'Version':<{ver_w}}  {'Type':<7}  Vulnerabilities",
             f"  {'─' * name_w}  {'─' * ver_w}  {'─' * 7}  {'─' * 20}"]
    empty = dict.fromkeys(SEVERITIES, 0)
    for p in pkgs:
        lines.append(f"  {p.name:<{name_w}}  {p.version:<{ver_w}}  {p.type:<7}  "
                     f"{counts_text(counts.get(id(p), empty))}")
    return "\n".join(lines) + "\n"
