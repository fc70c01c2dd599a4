"""Parsing JSON and YAML that came from outside: one place that bounds size and depth.

``json.loads`` and ``yaml.safe_load`` recurse once per nesting level, so a document
that is 100,000 brackets deep ends in ``RecursionError``; a shallower one (say 900
levels) parses, and then any code that walks it recursively fails instead.  Every
parse of untrusted input goes through ``loads`` / ``load_yaml``, which turn all of
that (and syntax errors, bad UTF-8, oversized input) into one typed error naming
what was being read.  Callers choose the error class, so a bad manifest stays a
``ManifestError`` and a bad signature payload stays a ``VerificationError``.
"""

from __future__ import annotations

import json

from giropops.errors import GiropopsError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any

#: Nesting deeper than this is refused.  Real documents (OCI manifests, OSV records, CycloneDX and
#: SPDX SBOMs, in-toto statements, build specs) stay below 30 levels.
MAX_DEPTH = 200


class DocumentError(GiropopsError):
    """A JSON or YAML document is malformed, too large or too deeply nested."""


def _too_deep(doc: Any, limit: int) -> bool:
    """True when ``doc`` nests containers deeper than ``limit``; iterative, shared nodes visited once."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= limit:
            return True
        if id(node) in seen:  # YAML aliases share nodes: walk each once
            continue
        seen.add(id(node))
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _brackets(data: str | bytes) -> int:
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{")
    return data.count("[") + data.count("{")


def loads(data: str | bytes, what: str, *, error: type[GiropopsError] = DocumentError,
          limit: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``data``; ``what`` names it in errors ("manifest of x", "VEX document f.json").

    Raises ``error`` (a ``GiropopsError`` class) when ``data`` is longer than ``limit`` bytes, is not
    UTF-8 / not JSON, or nests deeper than ``max_depth``.
    """
    if limit is not None and len(data) > limit:
        raise error(f"{what} is {len(data)} bytes, more than the {limit}-byte limit")
    try:
        doc = json.loads(data)
    except RecursionError:
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise error(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    # Counting brackets is cheap; only a document with enough of them can be too deep.
    if _brackets(data) > max_depth and _too_deep(doc, max_depth):
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)")
    return doc


def load_yaml(text: str | bytes, what: str, *, error: type[GiropopsError] = DocumentError,
              limit: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load`` with the same guarantees as ``loads`` (one typed error, bounded depth)."""
    if limit is not None and len(text) > limit:
        raise error(f"{what} is {len(text)} bytes, more than the {limit}-byte limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    import yaml  # here, not at the top: every JSON reader imports this module, few read YAML

    try:
        doc = yaml.safe_load(text)
    except RecursionError:
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{what} is not valid YAML{where}: {str(problem)[:200]}") from None
    if _too_deep(doc, max_depth):
        raise error(f"{what} is nested too deeply (more than {max_depth} levels)")
    return doc
