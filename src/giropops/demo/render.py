"""The demo's words: every line and the closing table, as text (``giropops.cli.demo`` prints them)."""

from __future__ import annotations

from pathlib import Path

from giropops.demo.steps import Side
from giropops.units import human_size
from giropops.vuln.report.view import counts_text


def mb(n: int) -> str:
    return human_size(n)


def home(path: Path) -> str:
    """``~/...`` for paths under the home directory: shorter, and what the user would type."""
    try:
        return "~/" + str(path.resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def pct(new: int, old: int) -> str:
    return f"-{(old - new) * 100 / old:.0f}%" if old else ""


def less(new: int, old: int) -> str:
    return f"{(old - new) * 100 / old:.0f}%" if old else "n/a"


def vulns(side: Side | None) -> str:
    if side is None:
        return "-"
    if side.vulnerabilities is None:
        return "NOT SCANNED"
    return f"{side.total_vulnerabilities} ({counts_text(side.vulnerabilities)})"


def table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def comparison_table(ours: Side, conv: Side | None) -> str:
    """The closing table: the conventional image beside ours."""
    rows: list[tuple[str, str, str, str]] = [("", "conventional", "giropops", "")]
    c = conv
    rows.append(("image size", mb(c.archive_size) if c else "-", mb(ours.archive_size),
                 pct(ours.archive_size, c.archive_size) if c else ""))
    rows.append(("packages", str(c.packages) if c else "-", str(ours.packages),
                 pct(ours.packages, c.packages) if c else ""))
    rows.append(("vulnerabilities", vulns(c), vulns(ours),
                 pct(ours.total_vulnerabilities or 0, c.total_vulnerabilities or 0)
                 if c and c.vulnerabilities is not None and ours.vulnerabilities is not None else ""))
    rows.append(("shell/apt/dpkg", ", ".join(c.tools) if c else "-", ", ".join(ours.tools) or "none", ""))
    return table(rows)
