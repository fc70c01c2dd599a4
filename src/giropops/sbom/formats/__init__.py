"""SBOM formats, encoded and decoded: ``json`` (ours), ``spdx-json`` (SPDX 2.3), ``cyclonedx-json`` (1.6), ``list``.

Encoding is deterministic: the same SBOM gives the same bytes.  Nothing random
or time-dependent goes in unless asked for (``EncodeOptions.timestamp``); the
CycloneDX serial number and the SPDX document namespace are derived from the
subject's digest and the content.  Decoding reads ours and what Trivy and Syft
write, so later commands can scan an SBOM instead of an image.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping

from giropops import __version__, jsonio
from giropops.errors import SBOMError
from giropops.record import record
from giropops.sbom.model import SBOM, Location, Package
from giropops.sbom.names import FORMATS as FORMATS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it
if TYPE_CHECKING:
    from typing import Any

    from packageurl import PackageURL

MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
TOOL_NAME = "giropops"
# Image creation time from the config, carried in the subject's annotations (used for SPDX's
# mandatory "created" when no timestamp was asked for: deterministic and meaningful).
CREATED_ANNOTATION = "org.opencontainers.image.created"
EPOCH = "1970-01-01T00:00:00Z"

PURL_TYPES = {"deb": "deb", "apk": "apk", "pypi": "python"}


@record
class EncodeOptions:
    """What an encoder may add that is not in the SBOM: the creation time, when asked for."""

    timestamp: str | None = None  # RFC 3339 UTC, e.g. "2024-01-02T03:04:05Z"; None: no wall clock


def timestamp_from_epoch(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def dumps(obj: Any) -> bytes:
    """``json.dumps(obj, indent=2, ensure_ascii=False) + "\\n"``, UTF-8.

    With ``indent``, the json module encodes in pure Python, one generator per container (10-20 ms for
    a 200 kB SBOM); ``_indented`` writes the same bytes with C-encoded strings and one call per
    container.  Anything it does not handle (a non-string key, another type) goes to ``json.dumps``."""
    try:
        text = _indented(obj, "\n")
    except _NotPlain:
        text = json.dumps(obj, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


class _NotPlain(Exception):
    """A value ``_indented`` leaves to ``json.dumps``."""


_string = json.encoder.encode_basestring  # the C encoder for ensure_ascii=False


def _indented(o: Any, nl: str) -> str:
    """``o`` as ``json.dumps(o, indent=2, ensure_ascii=False)`` writes it at the depth ``nl`` indents to."""
    if isinstance(o, str):
        return _string(o)
    if isinstance(o, dict):
        if not o:
            return "{}"
        inner = nl + "  "
        if not all([type(k) is str for k in o]):
            raise _NotPlain
        items = [_string(k) + ": " + (_string(v) if type(v) is str else _indented(v, inner)) for k, v in o.items()]
        return "{" + inner + ("," + inner).join(items) + nl + "}"
    if isinstance(o, list | tuple):
        if not o:
            return "[]"
        inner = nl + "  "
        values = [_string(v) if type(v) is str else _indented(v, inner) for v in o]
        return "[" + inner + ("," + inner).join(values) + nl + "]"
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if type(o) is int:
        return int.__repr__(o)
    raise _NotPlain  # floats (NaN, Infinity...), subclasses, the rest: as json writes them


# uuid.NAMESPACE_URL: ``uuid`` itself is not imported, it pulls ``platform`` into every start-up.
_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")


def uuid5(name: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, name))`` (RFC 4122: SHA-1, version 5, RFC variant)."""
    b = bytearray(hashlib.sha1(_NAMESPACE_URL + name.encode(), usedforsecurity=False).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_uuid(sbom: SBOM, salt: str) -> str:
    """A UUID that changes when (and only when) the subject or the inventory does."""
    h = hashlib.sha256(f"{salt}\n{sbom.subject.digest or sbom.subject.name}\n".encode())
    if sbom.distro is not None:
        h.update(f"{sbom.distro.id} {sbom.distro.version_id}\n".encode())
    for p in sbom.packages:
        h.update(f"{p.purl} {p.layer or ''} {','.join(p.licenses)}\n".encode())
    return uuid5(f"urn:giropops:sbom:{h.hexdigest()}")


def tool_string() -> str:
    return f"{TOOL_NAME}-{__version__}"


def parse_purl(text: str) -> PackageURL | None:
    """A purl read back from a document (ours or another tool's); the catalogers write theirs with
    ``giropops.sbom.purl``, so an SBOM run imports ``packageurl`` only when it decodes one."""
    from packageurl import PackageURL

    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def package_type(purl: PackageURL | None) -> str:
    if purl is None:
        return "unknown"
    return PURL_TYPES.get(purl.type, purl.type)


def ecosystem_name(purl: PackageURL, name: str) -> str:
    """The package's name as its ecosystem spells it, from the purl (another tool may have put only the
    last part in the document's name field): ``@scope/name`` (npm), the module path (Go),
    ``vendor/name`` (Composer), ``groupId:artifactId`` (Maven)."""
    if not purl.namespace:
        return name
    if purl.type in ("npm", "golang", "composer"):
        return f"{purl.namespace}/{purl.name}"
    if purl.type == "maven":
        return f"{purl.namespace}:{purl.name}"
    return name


def qualifiers(purl: PackageURL | None) -> Mapping[str, str]:
    if purl is None or not isinstance(purl.qualifiers, dict):
        return {}
    return purl.qualifiers


OWN = "giropops:"  # the namespace of our own properties (CycloneDX) and annotations (SPDX)


def own_locations(props: Mapping[str, str]) -> list[Location]:
    """``giropops:location:N:path`` / ``:layer`` pairs, in order."""
    out: list[Location] = []
    while f"{OWN}location:{len(out)}:path" in props:
        i = len(out)
        out.append(Location(props[f"{OWN}location:{i}:path"], props.get(f"{OWN}location:{i}:layer")))
    return out


def own_licenses(props: Mapping[str, str]) -> tuple[str, ...]:
    """``giropops:license:N`` values, in order (empty when the SBOM is not ours)."""
    return tuple(props[f"{OWN}license:{i}"] for i in range(len(props)) if f"{OWN}license:{i}" in props)


def own_metadata(props: Mapping[str, str]) -> dict[str, str]:
    prefix = f"{OWN}metadata:"
    return {k[len(prefix) :]: v for k, v in props.items() if k.startswith(prefix)}


def decoded_package(name: str, version: str, ptype: str, purl: str, source_name: str | None,
                    source_version: str | None, arch: str | None, licenses: tuple[str, ...],
                    locations: tuple[Location, ...], props: Mapping[str, str]) -> Package:
    """A package read back from an SPDX or CycloneDX document: our own metadata restored from ``props``, a
    Python name normalized (the name as written kept in the metadata)."""
    from giropops.sbom.catalogers.python import normalize

    meta = own_metadata(props)
    if ptype == "python":
        meta.setdefault("name", name)
        name = normalize(name)
    return Package(name=name, version=version, type=ptype, purl=purl, source_name=source_name,
                   source_version=source_version, arch=arch, licenses=licenses, locations=locations, metadata=meta)


def default_source(
    ptype: str, name: str, version: str, source_name: str | None, source_version: str | None
) -> tuple[str | None, str | None]:
    """A deb/apk package with no source recorded was built from itself; a source without version has the binary's."""
    if ptype in ("deb", "apk") and not source_name:
        return name, version
    if source_name and not source_version and ptype in ("deb", "apk"):
        return source_name, version
    return source_name, source_version


def prepare(fmt: str) -> None:
    """Import the encoder of ``fmt`` and load what it reads besides the SBOM (the SPDX license list), as
    ``encode`` would: a caller does it while it waits for something else (``sbom.generate``'s
    ``meanwhile``).  Never raises for a missing license list: ``encode`` says that itself."""
    if fmt == "spdx-json":
        from giropops.sbom.formats import spdx  # noqa: F401 - imported now rather than by encode
    elif fmt == "cyclonedx-json":
        from giropops.sbom.formats import cyclonedx  # noqa: F401 - imported now rather than by encode
    else:
        return
    from giropops.sbom import licenses

    licenses.preload()


def encode(sbom: SBOM, fmt: str, options: EncodeOptions | None = None) -> bytes:
    opts = options or EncodeOptions()
    if fmt == "json":
        from giropops.sbom.formats import native

        return native.encode(sbom)
    if fmt == "list":
        from giropops.sbom.formats import table

        return table.encode(sbom)
    if fmt == "spdx-json":
        from giropops.sbom.formats import spdx

        return spdx.encode(sbom, opts)
    if fmt == "cyclonedx-json":
        from giropops.sbom.formats import cyclonedx

        return cyclonedx.encode(sbom, opts)
    raise SBOMError(f"unknown SBOM format {fmt!r} (choose from {', '.join(FORMATS)})")


def decode(data: bytes, what: str = "SBOM") -> SBOM:
    """Detect the format (ours, SPDX 2.x JSON, CycloneDX JSON) and decode it."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SBOMError(f"{what}: larger than {MAX_DOCUMENT_BYTES} bytes")
    from giropops.sbom.formats import inputs  # issue 16: Syft JSON, SPDX tag-value, in-toto attestations

    if inputs.is_spdx_tag_value(data):
        from giropops.sbom.formats import spdx

        try:
            return spdx.decode(inputs.spdx_tag_value_to_json(data))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SBOMError(f"{what}: malformed SPDX tag-value ({type(exc).__name__}: {exc})") from exc
    obj = jsonio.loads(inputs.first_json_line(data) if data.lstrip().startswith(b'{"payloadType"') else data, what,
                       error=SBOMError)
    if isinstance(obj, dict) and inputs.is_intoto(obj):
        obj = inputs.predicate_of(obj, what)
    if not isinstance(obj, dict):
        raise SBOMError(f"{what}: not a JSON object")
    try:
        if inputs.is_syft(obj):
            return inputs.decode_syft(obj)
        if obj.get("bomFormat") == "CycloneDX":
            from giropops.sbom.formats import cyclonedx

            return cyclonedx.decode(obj)
        if isinstance(obj.get("spdxVersion"), str):
            from giropops.sbom.formats import spdx

            return spdx.decode(obj)
        if obj.get("schema") == "giropops-sbom/1":
            from giropops.sbom.formats import native

            return native.decode(obj)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SBOMError(f"{what}: malformed document ({type(exc).__name__}: {exc})") from exc
    raise SBOMError(f"{what}: not an SBOM this tool reads (SPDX JSON or tag-value, CycloneDX JSON, Syft JSON, "
                    "giropops JSON, or an in-toto attestation of SPDX or CycloneDX)")


__all__ = [
    "CREATED_ANNOTATION", "EPOCH", "FORMATS", "MAX_DOCUMENT_BYTES", "OWN", "PURL_TYPES", "TOOL_NAME", "EncodeOptions",
    "content_uuid", "decode", "decoded_package", "default_source", "dumps", "ecosystem_name", "encode",
    "own_licenses", "own_locations", "own_metadata", "package_type", "parse_purl", "qualifiers",
    "timestamp_from_epoch", "tool_string", "uuid5",
]
