"""Reports of a scan: Scout's text layout, packages, JSON (documented schema), SARIF 2.1.0, Markdown."""

from __future__ import annotations

import enum
from collections.abc import Callable

from giropops.vuln.report.view import ReportView


class Format(enum.StrEnum):
    TEXT = "text"
    PACKAGES = "packages"
    JSON = "json"
    SARIF = "sarif"
    MARKDOWN = "markdown"
    CYCLONEDX = "cyclonedx"
    SPDX = "spdx"
    GITLAB = "gitlab"


def _renderer(fmt: Format) -> Callable[[ReportView], str]:
    """The renderer of ``fmt``, its module imported when asked for (the SBOM formats' encoders behind
    ``cyclonedx`` and ``spdx`` cost a short ``cves`` run more than its JSON report)."""
    if fmt in (Format.TEXT, Format.PACKAGES):
        from giropops.vuln.report import text

        return text.render_cves if fmt is Format.TEXT else text.render_packages
    if fmt is Format.JSON:
        from giropops.vuln.report import json_report

        return json_report.render
    if fmt is Format.SARIF:
        from giropops.vuln.report import sarif

        return sarif.render
    if fmt is Format.MARKDOWN:
        from giropops.vuln.report import markdown

        return markdown.render
    if fmt in (Format.CYCLONEDX, Format.SPDX):
        from giropops.vuln.report import bom

        return bom.render_cyclonedx if fmt is Format.CYCLONEDX else bom.render_spdx
    if fmt is Format.GITLAB:
        from giropops.vuln.report import gitlab

        return gitlab.render
    raise KeyError(fmt)


def render(view: ReportView, fmt: Format) -> str:
    return _renderer(fmt)(view)


__all__ = ["Format", "ReportView", "render"]
