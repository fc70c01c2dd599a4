"""Package URLs as the catalogers write them: ``PackageURL(...).to_string()`` of ``packageurl-python``,
without importing it.

Importing ``packageurl`` costs about 17 ms (it pulls ``dataclasses``, ``inspect``, ``typing``,
``enum``-based classes and ``urllib.parse``): more than cataloging a small image.  Building a purl
string is a few lines, so the catalogers use ``purl`` below; ``packageurl`` stays the parser of
purls read back from other tools' SBOMs (``giropops.sbom.formats.parse_purl``), and the tests
compare this function with it on hostile input.

The steps are the library's: its constructor normalises each part (strip, lowercase for some
types, PyPI's ``_`` -> ``-``), then ``to_string`` normalises again while percent-encoding
(``urllib.parse.quote`` with ``/`` safe, ``%3A`` left as ``:``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# the types whose namespace / name are case-insensitive (lowercased), as packageurl lists them
_LOWER_NAMESPACE = frozenset({"bitbucket", "github", "pypi", "gitlab", "composer", "luarocks", "qpkg", "alpm",
                              "apk", "hex"})
_LOWER_NAME = frozenset({"bitbucket", "github", "pypi", "gitlab", "composer", "luarocks", "oci", "npm", "alpm",
                         "apk", "bitnami", "hex", "pub"})
# packageurl's special cases for these types are not reproduced: no cataloger writes them
_NOT_HERE = frozenset({"mlflow", "hackage", "pub", "cpan", "huggingface", "oci"})
# quote's always-safe bytes, its default safe "/", and ":" (packageurl turns "%3A" back into ":"; an
# escape is the only place "%" appears in quote's output, so that is the same as leaving ":" alone)
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/:")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_")


def quote(text: str) -> str:
    """``urllib.parse.quote(text)`` (UTF-8, ``/`` safe) with ``%3A`` turned back into ``:``."""
    data = text.encode("utf-8")
    if all(b in _SAFE for b in data):
        return text
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in data)


def _identity(text: str) -> str:
    return text


def _namespace(namespace: str | None, ptype: str | None, quoter: Callable[[str], str]) -> str | None:
    if not namespace:
        return None
    text = namespace.strip().strip("/")
    if ptype in _LOWER_NAMESPACE:
        text = text.lower()
    return "/".join(quoter(seg) for seg in text.split("/") if seg.strip()) or None


def _name(name: str | None, ptype: str | None, quoter: Callable[[str], str]) -> str | None:
    if not name:
        return None
    text = quoter(name).strip().strip("/")
    if ptype in _LOWER_NAME:
        text = text.lower()
    if ptype == "pypi":
        text = text.replace("_", "-").lower()
    return text or None


def _version(version: str | None, quoter: Callable[[str], str]) -> str | None:
    if not version:
        return None
    return quoter(version.strip()) or None


def _qualifiers(qualifiers: Mapping[str, str] | None, quoter: Callable[[str], str]) -> dict[str, str]:
    if not qualifiers:
        return {}
    out = {k.strip().lower(): quoter(v) for k, v in qualifiers.items() if k and k.strip() and v and v.strip()}
    for key in out:
        if "%" in key:
            raise ValueError(f"A qualifier key cannot be percent encoded: {key!r}")
        if " " in key:
            raise ValueError(f"A qualifier key cannot contain spaces: {key!r}")
        if any(c not in _KEY_CHARS for c in key):
            raise ValueError(f"A qualifier key must be composed only of ASCII letters and numbersperiod, dash and "
                             f"underscore: {key!r}")
        if key[0].isdigit():
            raise ValueError(f"A qualifier key cannot start with a number: {key!r}")
    return dict(sorted(out.items()))


def purl(ptype: str, name: str, version: str | None = None, namespace: str | None = None,
         qualifiers: Mapping[str, str] | None = None) -> str:
    """``PackageURL(type=ptype, namespace=namespace, name=name, version=version,
    qualifiers=qualifiers).to_string()``; ValueError where packageurl raises it."""
    for key, value in (("type", ptype), ("name", name)):
        if not value:
            raise ValueError(f"Invalid purl: {key} is a required argument.")
    if ptype.strip().lower() in _NOT_HERE:
        raise ValueError(f"purl type {ptype!r} is not written by a cataloger")
    # the constructor's normalisation (no quoting), then to_string's (quoting)
    t = ptype.strip().lower() or None
    ns = _namespace(namespace, t, _identity)
    n = _name(name, t, _identity)
    v = _version(version, _identity)
    q = _qualifiers(qualifiers, _identity)
    t = quote(t).strip().lower() if t else None
    ns = _namespace(ns, t, quote)
    n = _name(n, t, quote)
    v = _version(v, quote)
    q = _qualifiers(q, quote)
    if t is None or n is None:  # packageurl fails here too (joining None)
        raise ValueError("Invalid purl: the type and name must not be empty once normalised")
    out = ["pkg:", t, "/"]
    if ns:
        out += [ns, "/"]
    out.append(n)
    if v:
        out += ["@", v]
    if q:
        out += ["?", "&".join(f"{k}={value}" for k, value in q.items())]
    return "".join(out)
