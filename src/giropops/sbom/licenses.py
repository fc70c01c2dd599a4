"""Declared licenses as SPDX expressions, where they are valid ones.

SPDX's ``licenseDeclared`` must be a valid SPDX expression and CycloneDX's
``expression`` should be; Debian copyright files and Python metadata often say
``GPL-2+`` or ``BSD``.  ``license-expression`` (which ships the SPDX license list,
and is what the SPDX tools themselves use) decides which is which.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

_CANDIDATE = re.compile(r"^[A-Za-z0-9.+:() -]+$")


@lru_cache(maxsize=1)
def _licensing() -> Any:
    return get_spdx_licensing()


@lru_cache(maxsize=4096)
def spdx_expression(text: str) -> str | None:
    """The normalized SPDX expression for ``text``, or None if it is not one."""
    if not text.strip() or len(text) > 1000 or not _CANDIDATE.match(text):
        return None
    try:
        info = _licensing().validate(text)
    except (ExpressionError, AttributeError):
        # AttributeError: license-expression 30.x fails inside validate() on some invalid keys.
        return None
    if info.errors or not info.normalized_expression:
        return None
    return str(info.normalized_expression)


def combined(licenses: tuple[str, ...]) -> str | None:
    """All licenses ANDed as one SPDX expression, or None if any is not valid SPDX."""
    parts = []
    for lic in licenses:
        expr = spdx_expression(lic)
        if expr is None:
            return None
        parts.append(f"({expr})" if " " in expr else expr)
    if not parts:
        return None
    return " AND ".join(parts)


def license_ref(text: str) -> str:
    """A ``LicenseRef-`` id for a license name that is not SPDX (idstring: letters, digits, ``.`` and ``-``)."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "unknown"
    return f"LicenseRef-{slug[:200]}"


def split_and(expr: str) -> tuple[str, ...]:
    """Inverse of ``combined`` for top-level ANDs: ``A AND (B OR C)`` -> ``("A", "B OR C")``."""
    out: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and expr.startswith(" AND ", i):
            out.append(expr[start:i])
            start = i + 5
            i += 5
            continue
        i += 1
    out.append(expr[start:])
    cleaned = []
    for part in out:
        p = part.strip()
        if p.startswith("(") and p.endswith(")") and _balanced(p[1:-1]):
            p = p[1:-1].strip()
        if p:
            cleaned.append(p)
    return tuple(cleaned)


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return False
    return depth == 0
