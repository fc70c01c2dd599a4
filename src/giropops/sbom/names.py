"""The names an SBOM command takes on its command line: package types and output formats.

Kept apart from ``model`` and ``formats`` (which re-export them) with no imports, so that
``giropops sbom --help`` and every other parser that lists them does not import dataclasses,
the encoders or the catalogers.
"""

from __future__ import annotations

from collections.abc import Iterable

PACKAGE_TYPES = ("deb", "apk", "rpm", "python", "npm", "golang", "maven", "gem", "cargo", "nuget", "composer")
# What users may also type: ecosystem and purl spellings of the same types.
TYPE_ALIASES = {
    "pypi": "python",
    "go": "golang",
    "java": "maven",
    "jar": "maven",
    "ruby": "gem",
    "rust": "cargo",
    "crates.io": "cargo",
    "dotnet": "nuget",
    ".net": "nuget",
    "php": "composer",
    "node": "npm",
}

#: The output formats of ``giropops.sbom.formats.encode``.
FORMATS = ("list", "json", "spdx-json", "cyclonedx-json")


def package_types(words: Iterable[str]) -> frozenset[str]:
    """``--only-package-type`` values (aliases allowed) as package types; ValueError names a bad one."""
    out: set[str] = set()
    for w in words:
        t = TYPE_ALIASES.get(w.strip().lower(), w.strip().lower())
        if t not in PACKAGE_TYPES:
            raise ValueError(f"unknown package type {w.strip()!r} (one of: {', '.join(PACKAGE_TYPES)})")
        out.add(t)
    return frozenset(out)


__all__ = ["FORMATS", "PACKAGE_TYPES", "TYPE_ALIASES", "package_types"]
