"""Declared licenses as SPDX expressions, where they are valid ones.

SPDX's ``licenseDeclared`` must be a valid SPDX expression and CycloneDX's
``expression`` should be; Debian copyright files and Python metadata often say
``GPL-2+`` or ``BSD``.  The SPDX license list comes from ``license-expression``
(the library the SPDX tools use), read from its bundled license index: building
its full ``Licensing`` automaton costs more than cataloging a small image, and a
declared license only needs "is every symbol an SPDX id or exception, and is
the expression well formed".  Deprecated ids map to their current ones
(``GPL-2.0+`` -> ``GPL-2.0-or-later``) as ``license-expression`` maps them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from functools import lru_cache

from giropops.errors import SBOMError

_LICENSE_INDEX = os.path.join("license_expression", "data", "scancode-licensedb-index.json")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = {"AND", "OR"}


@lru_cache(maxsize=1)
def _spdx_keys() -> tuple[dict[str, str], dict[str, str]]:
    """(licenses, exceptions): lowercased id -> canonical SPDX id."""
    # The installed package's data file, found on sys.path without importing license_expression (its
    # import builds parsers we do not use and costs more than the rest of a small SBOM run).
    # (strings, not pathlib: a cold run imports nothing of it)
    index = next((p for p in (os.path.join(e, _LICENSE_INDEX) if e else _LICENSE_INDEX for e in sys.path)
                  if os.path.isfile(p)), None)
    if index is None:
        raise SBOMError("license-expression (the SPDX license list) is not installed")
    try:
        st = os.stat(index)
    except OSError as exc:
        raise SBOMError(f"cannot read the SPDX license list {index}: {exc.strerror}") from exc
    # The 1 MB index is parsed once per installed copy: what it gives is kept in the cache directory,
    # under the index file's path and identity (a reinstalled or edited index has another).
    source = [index, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    cached = _cached_keys(source)
    if cached is not None:
        return cached
    try:
        with open(index, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise SBOMError(f"cannot read the SPDX license list {index}: {exc.strerror}") from exc
    # The index giropops was released with: its tables ship with giropops (no scan, nothing to keep)
    shipped = _shipped_keys(data)
    if shipped is not None:
        return shipped
    licenses, exceptions = _scan_index(data) or _parse_index(data)
    _store_keys(source, licenses, exceptions)
    return licenses, exceptions


#: The tables of one release of license-expression's index, made by ``scripts/spdx_keys_table.py`` with
#: ``_parse_index`` and named by the SHA-256 of the index they come from (``data/spdx/PROVENANCE.md``).
SHIPPED_TABLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "spdx",
                              "spdx-license-keys.json")


def _tables(doc: object) -> tuple[dict[str, str], dict[str, str]] | None:
    """``doc``'s "licenses" and "exceptions" when both map strings to strings, else None."""
    if not isinstance(doc, dict):
        return None
    tables = doc.get("licenses"), doc.get("exceptions")
    for table in tables:
        if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
            return None
    return tables[0], tables[1]  # type: ignore[return-value]


def _shipped_keys(data: bytes) -> tuple[dict[str, str], dict[str, str]] | None:
    """The shipped tables when they were made from the index whose bytes are ``data`` (its SHA-256: about a
    third of scanning it), else None (another release of license-expression: it is scanned)."""
    try:
        with open(SHIPPED_TABLES, "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("index_sha256") != hashlib.sha256(data).hexdigest():
        return None
    return _tables(doc)


def preload() -> None:
    """Load the SPDX license list now (``_spdx_keys``, kept for the process); a missing or unreadable one is
    left for the first expression to report."""
    try:
        _spdx_keys()
    except SBOMError:
        pass


# One entry of the index as license-expression ships it, the three fields we read in this order and layout,
# for an SPDX id (scancode-only ``LicenseRef-`` entries are not on the SPDX list and are only counted).  Reading
# them with one pattern costs a third of decoding the whole 1 MB document; any other layout (or an escape
# inside a string) is not guessed at: the document is then decoded as JSON (``_parse_index``).
# (patterns, compiled by re when an index is first scanned: the shipped tables need neither)
_ENTRY = (
    r'"spdx_license_key": "(?!LicenseRef-)([^"\\]+)",\s*'
    r'"other_spdx_license_keys": \[\s*((?:"[^"\\]*"(?:,\s*"[^"\\]*")*)?)\s*\],\s*'
    r'"is_exception": (true|false),'
)
_STRING = r'"([^"\\]*)"'


def _add(licenses: dict[str, str], exceptions: dict[str, str], key: object, others: object, exc: object) -> None:
    if not isinstance(key, str) or not key or key.startswith("LicenseRef-"):
        return  # scancode-only licenses are not on the SPDX list
    target = exceptions if exc else licenses
    target[key.lower()] = key
    for other in others if isinstance(others, list) else ():
        if isinstance(other, str) and not other.startswith("LicenseRef-"):
            target.setdefault(other.lower(), key)


def _parse_index(data: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """The tables of the index, decoded as the JSON document it is."""
    licenses: dict[str, str] = {}
    exceptions: dict[str, str] = {}
    try:
        entries = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SBOMError(f"the SPDX license list of license-expression is not valid JSON: {exc}") from None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            _add(licenses, exceptions, entry.get("spdx_license_key"), entry.get("other_spdx_license_keys"),
                 entry.get("is_exception"))
    return licenses, exceptions


def _scan_index(data: bytes) -> tuple[dict[str, str], dict[str, str]] | None:
    """The same tables as ``_parse_index``, read with ``_ENTRY``; None unless every entry has that layout."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "\\" in text:
        return None
    found = re.findall(_ENTRY, text)
    # Every entry has a "spdx_license_key": one that _ENTRY read, a LicenseRef- or none (null).
    entries = text.count('"license_key"')
    skipped = text.count('"spdx_license_key": "LicenseRef-') + text.count('"spdx_license_key": null,')
    if entries != text.count('"spdx_license_key"') or len(found) + skipped != entries:
        return None
    licenses: dict[str, str] = {}
    exceptions: dict[str, str] = {}
    for key, others, exc in found:
        target = exceptions if exc == "true" else licenses
        target[key.lower()] = key
        if others:
            for other in re.findall(_STRING, others):
                if not other.startswith("LicenseRef-"):
                    target.setdefault(other.lower(), key)
    return licenses, exceptions


_KEYS_FILE = "spdx-license-keys.json"


def _cached_keys(source: list[object]) -> tuple[dict[str, str], dict[str, str]] | None:
    """The tables ``_spdx_keys`` kept for the index ``source`` names, or None (a miss, never an error)."""
    from giropops.cachedir import cache_root_text

    try:
        with open(os.path.join(cache_root_text(), _KEYS_FILE), "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("source") != source:
        return None
    return _tables(doc)


def _store_keys(source: list[object], licenses: dict[str, str], exceptions: dict[str, str]) -> None:
    from giropops.cachedir import cache_root_text
    from giropops.fileio import atomic_write

    root = cache_root_text()
    try:
        os.makedirs(root, exist_ok=True)
        doc = {"source": source, "licenses": licenses, "exceptions": exceptions}
        atomic_write(os.path.join(root, _KEYS_FILE), json.dumps(doc, separators=(",", ":")).encode(), 0o600)
    except OSError:
        return  # a cache that cannot be written is skipped


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.licenses, self.exceptions = _spdx_keys()

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expression(self) -> str | None:
        left = self.term()
        if left is None:
            return None
        parts = [left]
        while (tok := self.peek()) is not None and tok.upper() in _OPERATORS:
            op = self.take().upper()
            right = self.term()
            if right is None:
                return None
            parts += [op, right]
        return " ".join(parts)

    def term(self) -> str | None:
        tok = self.peek()
        if tok is None:
            return None
        if tok == "(":
            self.take()
            inner = self.expression()
            if inner is None or self.peek() != ")":
                return None
            self.take()
            return f"({inner})"
        if tok == ")" or tok.upper() in _OPERATORS or tok.upper() == "WITH":
            return None
        self.take()
        plus = tok.endswith("+") and tok[:-1].lower() not in self.licenses and tok.lower() not in self.licenses
        key = self.licenses.get(tok[:-1].lower() if plus else tok.lower())
        if key is None:
            return None
        if plus:
            key = self.licenses.get(f"{key.lower()}+", key + "+")
            if key.endswith("+") and key[:-1] + "-or-later" in self.licenses.values():
                key = key[:-1] + "-or-later"
        nxt = self.peek()
        if nxt is not None and nxt.upper() == "WITH":
            self.take()
            exc = self.peek()
            if exc is None:
                return None
            exc_key = self.exceptions.get(self.take().lower())
            if exc_key is None:
                return None
            return f"{key} WITH {exc_key}"
        return key


@lru_cache(maxsize=4096)
def spdx_expression(text: str) -> str | None:
    """The normalized SPDX expression for ``text``, or None if it is not one."""
    if not text.strip() or len(text) > 1000:
        return None
    tokens = _TOKEN.findall(text)
    parser = _Parser(tokens)
    expr = parser.expression()
    if expr is None or parser.pos != len(tokens):
        return None
    return expr


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
    plain = text.replace("+", "-plus")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", plain).strip("-")[:200] or "unknown"
    if slug != plain:  # characters were lost: keep distinct names distinct
        slug += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"LicenseRef-{slug}"


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
