"""Which distribution an image is: ``os-release`` first, then the distribution's own marker files.

Debian advisories are keyed by the release number (``Debian:12``), so for Debian
``version_id`` is the major release from ``os-release`` (distroless ships one
too), falling back to ``/etc/debian_version`` when os-release lacks it (testing,
hand-made roots).  Alpine keeps the full ``3.19.1`` (the OSV ecosystem uses the
minor).  Wolfi and Chainguard say who they are in ``os-release``.  Scratch images
and static binaries have none of these files: no distribution, which is fine.
"""

from __future__ import annotations

import re

from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro

GLOBS = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/alpine-release",
    "etc/debian_version",
    "etc/lsb-release",
)

_LINE = re.compile(r"^([A-Za-z0-9_]+)=(.*)$")


def parse_os_release(text: str) -> dict[str, str]:
    """Shell-style ``KEY=value`` lines with optional single or double quotes (os-release(5))."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if raw.strip().split("=", 1)[1].strip().startswith('"'):
                value = re.sub(r'\\([\\$"`])', r"\1", value)
        out[key] = value
    return out


def _text(resolver: Resolver, path: str) -> str | None:
    data = resolver.read(path)
    if data is None:
        return None
    return data[:65536].decode("utf-8", "replace")


def detect(resolver: Resolver) -> Distro | None:
    fields: dict[str, str] = {}
    for path in ("etc/os-release", "usr/lib/os-release"):
        text = _text(resolver, path)
        if text is not None:
            fields = parse_os_release(text)
            if fields.get("ID"):
                break
    alpine_release = _text(resolver, "etc/alpine-release")
    debian_version = _text(resolver, "etc/debian_version")
    distro_id = fields.get("ID", "").strip().lower()
    version_id = fields.get("VERSION_ID", "").strip()
    if not distro_id:
        if alpine_release is not None:
            distro_id = "alpine"
        elif debian_version is not None:
            distro_id = "debian"
        else:
            return None
    if distro_id == "alpine" and alpine_release and alpine_release.strip():
        version_id = alpine_release.strip().splitlines()[0].strip()
    if distro_id == "debian" and not version_id and debian_version:
        first = debian_version.strip().splitlines()[0].strip() if debian_version.strip() else ""
        m = re.match(r"^(\d+)", first)
        version_id = m.group(1) if m else ""
    id_like = tuple(x for x in fields.get("ID_LIKE", "").lower().split() if x)
    return Distro(
        id=distro_id,
        version_id=version_id,
        pretty_name=fields.get("PRETTY_NAME", ""),
        id_like=id_like,
        version_codename=fields.get("VERSION_CODENAME", ""),
    )


def purl_distro(distro: Distro | None) -> str | None:
    """The ``distro=`` qualifier of package URLs: ``debian-12``, ``alpine-3.19.1``, ``wolfi``."""
    if distro is None:
        return None
    if distro.id == "debian" and distro.version_id:
        return f"debian-{distro.version_id.split('.')[0]}"
    if distro.version_id:
        return f"{distro.id}-{distro.version_id}"
    return distro.id
