"""Reports of a scan: Scout's text layout, packages, JSON (documented schema), SARIF 2.1.0, Markdown."""

from __future__ import annotations

import enum
from collections.abc import Callable

from giropops.vuln.report import bom, gitlab, json_report, markdown, sarif, text
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


_RENDERERS: dict[Format, Callable[[ReportView], str]] = {
    Format.TEXT: text.render_cves,
    Format.PACKAGES: text.render_packages,
    Format.JSON: json_report.render,
    Format.SARIF: sarif.render,
    Format.MARKDOWN: markdown.render,
    Format.CYCLONEDX: bom.render_cyclonedx,
    Format.SPDX: bom.render_spdx,
    Format.GITLAB: gitlab.render,
}


def render(view: ReportView, fmt: Format) -> str:
    return _RENDERERS[fmt](view)


__all__ = ["Format", "ReportView", "render"]
