"""Python: installed distributions in any site-packages or dist-packages, virtualenvs included.

``*.dist-info/METADATA`` (with the ``RECORD`` beside it for owned files) and
``*.egg-info/PKG-INFO`` (or an ``*.egg-info`` file, the old distutils form).
Names are normalized as PEP 503 says (``Foo_Bar.baz`` -> ``foo-bar-baz``), which
is also what ``pkg:pypi`` package URLs and advisories use; the spelling from
the metadata is kept in ``metadata["name"]``.
"""

from __future__ import annotations

import io
import posixpath
import re

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, toml_packages
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Package
from giropops.sbom.purl import purl as make_purl

NAME = "python"
DIST_INFO = "**/*.dist-info/METADATA"
RECORD = "**/*.dist-info/RECORD"
EGG_INFO_DIR = "**/*.egg-info/PKG-INFO"
EGG_INFO_FILE = "**/*.egg-info"
EGG_DIR = "**/EGG-INFO/PKG-INFO"

_NORMALIZE = re.compile(r"[-_.]+")
_MAX_LICENSE_FIELD = 120


def normalize(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``, lowercased."""
    return _NORMALIZE.sub("-", name).lower()


def parse_headers(text: str) -> tuple[dict[str, str], list[str], bool]:
    """The header block of core metadata (RFC 822 style): first value of each field, the
    ``Classifier`` values, and whether a malformed line was seen.  The body after the first
    blank line (the long description) is ignored."""
    headers: dict[str, str] = {}
    classifiers: list[str] = []
    malformed = False
    key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if key is not None and key in headers:
                headers[key] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            malformed = True
            key = None
            continue
        key = name
        value = value.strip()
        if name == "Classifier":
            classifiers.append(value)
            key = None
        elif name not in headers:
            headers[name] = value
        else:
            key = None
    return headers, classifiers, malformed


def _licenses(headers: dict[str, str], classifiers: list[str]) -> tuple[str, ...]:
    expr = headers.get("License-Expression", "").strip()
    if expr:
        return (expr,)
    lic = headers.get("License", "").strip()
    if lic and "\n" not in lic and len(lic) <= _MAX_LICENSE_FIELD and lic.upper() != "UNKNOWN":
        return (lic,)
    found = []
    for c in classifiers:
        parts = [p.strip() for p in c.split("::")]
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] not in ("OSI Approved", ""):
            found.append(parts[-1])
    return tuple(found)


class PythonCataloger:
    name = NAME
    globs = (DIST_INFO, RECORD, EGG_INFO_DIR, EGG_INFO_FILE, EGG_DIR)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        paths = resolver.glob(DIST_INFO) + resolver.glob(EGG_INFO_DIR) + resolver.glob(EGG_DIR)
        paths += resolver.glob(EGG_INFO_FILE)
        for path in sorted(set(paths)):
            self._one(resolver, path, result)
        return result

    def _one(self, resolver: Resolver, path: str, result: CatalogResult) -> None:
        location = resolver.location(path)
        data = result.read_metadata(resolver, path, NAME)
        if data is None:
            return
        headers, classifiers, _ = parse_headers(data.decode("utf-8", "replace"))
        raw_name = (headers.get("Name") or "").strip()
        version = (headers.get("Version") or "").strip()
        if not raw_name or not version:
            result.unknown(location, NAME, "no Name or Version in the metadata header")
            return
        name = normalize(raw_name)
        files: tuple[str, ...] = ()
        if path.endswith(".dist-info/METADATA"):
            dist_info = posixpath.dirname(path)
            site = posixpath.dirname(dist_info)
            record = resolver.read(f"{dist_info}/RECORD")
            if record is not None:
                collected = []
                for first in record_paths(record.decode("utf-8", "replace")):
                    collected.append("/" + posixpath.normpath(posixpath.join(site, first)).lstrip("/"))
                files = tuple(collected)
        metadata = {"name": raw_name}
        if headers.get("Summary"):
            metadata["summary"] = headers["Summary"].strip()[:200]
        result.packages.append(
            Package(
                name=name,
                version=version,
                type="python",
                purl=make_purl(ptype="pypi", name=name, version=version),
                licenses=_licenses(headers, classifiers),
                locations=(location,),
                files=files,
                metadata=metadata,
            )
        )


#: csv's default field size limit: a longer text may hold a field csv refuses, so csv reads it.
_CSV_FIELD_LIMIT = 131072


def record_paths(text: str) -> list[str]:
    """The first field of each row of a wheel's RECORD (CSV), empty ones left out: what ``csv.reader`` gives.

    A RECORD quotes a path only when it has a comma, a quote or a line break in it, and ends its rows with
    CRLF (csv's default).  A text with no quote, no NUL, no carriage return but before a newline, and too
    short for a field over csv's limit, is split as csv would split it (rows on newlines, less a CR
    ending them; fields on commas) without importing csv.  Anything else is read by csv."""
    if '"' in text or "\x00" in text or len(text) > _CSV_FIELD_LIMIT or text.count("\r") != text.count("\r\n"):
        import csv

        return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]
    return [first for line in text.split("\n") if (first := line.removesuffix("\r").partition(",")[0])]


# -- source trees: requirements.txt, poetry.lock, Pipfile.lock, uv.lock -------------------------------

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s;#,]+)")


def parse_requirements(text: str) -> list[tuple[str, str]]:
    """Pinned requirements only (``name==1.2``, extras and markers allowed): a range says no version."""
    out: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _REQ.match(line)
        if m:
            out.append((normalize(m.group(1)), m.group(2)))
    return out


def parse_poetry_lock(text: str) -> list[tuple[str, str]]:
    return [
        (normalize(str(p["name"])), str(p["version"]))
        for p in toml_packages(text)
        if "name" in p and "version" in p and p.get("category", "main") == "main"
    ]


def parse_uv_lock(text: str) -> list[tuple[str, str]]:
    """Every locked package except the project itself (an editable or virtual source)."""
    out: list[tuple[str, str]] = []
    for p in toml_packages(text):
        source = p.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source):
            continue
        if "name" in p and "version" in p:
            out.append((normalize(str(p["name"])), str(p["version"])))
    return out


def parse_pipfile_lock(text: str) -> list[tuple[str, str]]:
    """The ``default`` section (``develop`` is not part of the application)."""
    import json

    doc = json.loads(text)
    default = doc.get("default") if isinstance(doc, dict) else None
    if not isinstance(default, dict):
        raise ValueError("no 'default' object")
    out: list[tuple[str, str]] = []
    for name, entry in default.items():
        version = entry.get("version") if isinstance(entry, dict) else None
        if isinstance(version, str) and version.startswith("=="):
            out.append((normalize(name), version[2:]))
    return out


def pypi_purl(name: str, version: str) -> str:
    return make_purl(ptype="pypi", name=name, version=version)


LOCKFILE_CATALOGERS = (
    LockfileCataloger("python-requirements", ("**/requirements*.txt",), "python", parse_requirements, pypi_purl),
    LockfileCataloger("poetry-lock", ("**/poetry.lock",), "python", parse_poetry_lock, pypi_purl),
    LockfileCataloger("pipfile-lock", ("**/Pipfile.lock",), "python", parse_pipfile_lock, pypi_purl),
    LockfileCataloger("uv-lock", ("**/uv.lock",), "python", parse_uv_lock, pypi_purl),
)
