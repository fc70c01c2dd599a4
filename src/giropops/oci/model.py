"""Value types of the image model: frozen, validated in their constructors, round-tripping JSON.

``Digest`` always names bytes as stored (a compressed layer's digest); a layer's
*diff_id* is also a ``Digest`` but of the uncompressed tar.  The two are never
interchangeable: ``Descriptor.digest`` is the former, ``ImageConfig.diff_ids``
the latter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence

from giropops import jsonio
from giropops.errors import ManifestError, quote_for_error
from giropops.oci import mediatypes as mt
from giropops.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it
if TYPE_CHECKING:
    from typing import Any

_HEX_LEN = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")


#: Bytes up to which ``Digest.of`` uses CPython's built-in sha256/sha512 while ``hashlib`` is not loaded yet.
_SMALL = 1 << 20


def _small_hash(algorithm: str, data: bytes) -> str:
    """The hex digest of ``data``.  A manifest or config hashed before anything loaded ``hashlib`` uses the
    interpreter's own module: loading OpenSSL for it (``hashlib``) costs 3 ms, a tenth of a warm push."""
    import sys

    if "hashlib" not in sys.modules and len(data) <= _SMALL:
        try:
            if algorithm == "sha256":
                import _sha256

                return str(_sha256.sha256(data).hexdigest())
            if algorithm == "sha512":
                import _sha512

                return str(_sha512.sha512(data).hexdigest())
        except ImportError:  # another interpreter or version: hashlib below
            pass
    import hashlib

    return hashlib.new(algorithm, data).hexdigest()


@record(order=True)
class Digest:
    """A content digest, ``algorithm:hex`` (sha256 or sha512)."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = _HEX_LEN.get(self.algorithm)
        if want is None:
            raise ManifestError(f"unsupported digest algorithm {quote_for_error(self.algorithm)}")
        if len(self.hex) != want or not re.fullmatch(r"[a-f0-9]+", self.hex):
            raise ManifestError(f"invalid {self.algorithm} digest {quote_for_error(self.hex)}")

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not isinstance(text, str):
            raise ManifestError(f"digest must be a string, got {type(text).__name__}")
        m = _DIGEST_RE.match(text)
        if not m:
            raise ManifestError(f"invalid digest {text[:100]!r}")
        return cls(m.group(1), m.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, _small_hash(algorithm, data))

    def hasher(self) -> Any:
        import hashlib  # streams (layers, blobs): OpenSSL's, the fastest here

        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return self.hex[:12]


def _machine_arch() -> tuple[str, str | None]:
    import platform  # only the host-platform default needs it: not imported on every start-up

    m = platform.machine().lower()
    return {
        "x86_64": ("amd64", None),
        "amd64": ("amd64", None),
        "aarch64": ("arm64", "v8"),
        "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", None),
        "i386": ("386", None),
        "ppc64le": ("ppc64le", None),
        "s390x": ("s390x", None),
        "riscv64": ("riscv64", None),
    }.get(m, (m, None))


@record
class Platform:
    """``os/architecture[/variant]`` of an image, as its config and an index entry name it."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/amd64``, ``linux/arm64/v8``; an omitted os means linux."""
        parts = [p for p in text.strip().split("/")]
        if any(not p for p in parts) or not 1 <= len(parts) <= 3:
            raise ManifestError(f"invalid platform {quote_for_error(text)} (expected os/arch[/variant])")
        if len(parts) == 1:
            return cls("linux", parts[0])
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        arch, variant = _machine_arch()
        return cls("linux", arch, variant)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Platform:
        if not isinstance(obj, Mapping):
            raise ManifestError("platform must be an object")
        os_ = obj.get("os")
        arch = obj.get("architecture")
        if not isinstance(os_, str) or not isinstance(arch, str):
            raise ManifestError("platform needs string 'os' and 'architecture'")
        variant = obj.get("variant")
        osv = obj.get("os.version")
        return cls(os_, arch, variant if isinstance(variant, str) else None, osv if isinstance(osv, str) else None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def matches(self, want: Platform) -> bool:
        """True when this (an index entry) satisfies ``want`` (what the user asked for).

        A missing variant on either side matches, except that arm64 treats ``v8``
        as the default variant, as containerd does.
        """
        if self.os != want.os or self.architecture != want.architecture:
            return False
        if want.variant and self.variant and want.variant != self.variant:
            return False
        return True

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def _req_str(obj: Mapping[str, Any], key: str, what: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        raise ManifestError(f"{what}: '{key}' must be a string")
    return v


def _opt_annotations(obj: Mapping[str, Any], what: str) -> dict[str, str]:
    a = obj.get("annotations")
    if a is None:
        return {}
    if not isinstance(a, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in a.items()):
        raise ManifestError(f"{what}: 'annotations' must map strings to strings")
    return dict(a)


@record
class Descriptor:
    """An OCI content descriptor: media type, digest and size of a blob, with optional platform and annotations."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ManifestError(f"descriptor size must be a non-negative integer, got {quote_for_error(self.size)}")

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, Mapping):
            raise ManifestError("descriptor must be an object")
        size = obj.get("size")
        if isinstance(size, bool) or not isinstance(size, int):
            raise ManifestError("descriptor: 'size' must be an integer")
        plat = obj.get("platform")
        urls = obj.get("urls") or ()
        if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
            raise ManifestError("descriptor: 'urls' must be a list of strings")
        at = obj.get("artifactType")
        return cls(
            media_type=_req_str(obj, "mediaType", "descriptor"),
            digest=Digest.parse(_req_str(obj, "digest", "descriptor")),
            size=size,
            annotations=_opt_annotations(obj, "descriptor"),
            platform=Platform.from_json(plat) if plat is not None else None,
            urls=tuple(urls),
            artifact_type=at if isinstance(at, str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


def parse_json_document(raw: bytes, what: str, limit: int) -> dict[str, Any]:
    """Parse a JSON object with a size bound; every failure is a ManifestError naming ``what``."""
    if len(raw) > limit:
        raise ManifestError(f"{what} is {len(raw)} bytes, more than the {limit}-byte limit")
    obj = jsonio.loads(raw, what, error=ManifestError)
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} must be a JSON object")
    return obj


def sniff_media_type(obj: Mapping[str, Any]) -> str:
    """The media type a manifest/index document declares, or infers when it omits it (OCI allows that)."""
    mtype = obj.get("mediaType")
    if isinstance(mtype, str) and mtype:
        return mtype
    if "manifests" in obj:
        return mt.OCI_INDEX
    if "layers" in obj and "config" in obj:
        return mt.OCI_MANIFEST
    raise ManifestError("document has no mediaType and is neither a manifest nor an index")


def _document_head(
    obj: Mapping[str, Any], kind: str, types: Collection[str], list_key: str
) -> tuple[str, list[Any]]:
    """The media type of a ``kind`` ("manifest", "index") and its ``list_key`` list, both checked."""
    mtype = sniff_media_type(obj)
    if mtype not in types:
        raise ManifestError(f"unsupported {kind} media type {quote_for_error(mtype)}")
    if obj.get("schemaVersion") != 2:
        raise ManifestError(f"{kind}: schemaVersion must be 2")
    items = obj.get(list_key)
    if not isinstance(items, list):
        raise ManifestError(f"{kind}: '{list_key}' must be a list")
    return mtype, items


def _with_subject_and_annotations(
    out: dict[str, Any], subject: Descriptor | None, annotations: Mapping[str, str]
) -> dict[str, Any]:
    """``out`` with the optional ``subject`` and ``annotations`` a manifest or index ends with."""
    if subject is not None:
        out["subject"] = subject.to_json()
    if annotations:
        out["annotations"] = dict(annotations)
    return out


@record
class Manifest:
    """An image manifest (OCI or Docker schema 2).  ``raw`` is kept: digests are of these bytes."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Manifest:
        mtype, layers = _document_head(obj, "manifest", mt.MANIFEST_TYPES, "layers")
        subj = obj.get("subject")
        at = obj.get("artifactType")
        return cls(
            media_type=mtype,
            config=Descriptor.from_json(obj.get("config")),
            layers=tuple(Descriptor.from_json(layer) for layer in layers),
            annotations=_opt_annotations(obj, "manifest"),
            subject=Descriptor.from_json(subj) if subj is not None else None,
            artifact_type=at if isinstance(at, str) else None,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        return cls.from_json(parse_json_document(raw, "manifest", mt.MAX_MANIFEST_BYTES))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["config"] = self.config.to_json()
        out["layers"] = [layer.to_json() for layer in self.layers]
        return _with_subject_and_annotations(out, self.subject, self.annotations)

    def to_bytes(self) -> bytes:
        """Canonical serialisation used when *we* write a manifest (stable across runs)."""
        return canonical_json(self.to_json())


@record
class Index:
    """An OCI image index or Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Index:
        mtype, manifests = _document_head(obj, "index", mt.INDEX_TYPES, "manifests")
        subj = obj.get("subject")
        return cls(
            media_type=mtype,
            manifests=tuple(Descriptor.from_json(d) for d in manifests),
            annotations=_opt_annotations(obj, "index"),
            subject=Descriptor.from_json(subj) if subj is not None else None,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Index:
        return cls.from_json(parse_json_document(raw, "index", mt.MAX_MANIFEST_BYTES))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        out["manifests"] = [d.to_json() for d in self.manifests]
        return _with_subject_and_annotations(out, self.subject, self.annotations)

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def select(self, want: Platform) -> Descriptor:
        """The manifest for ``want``; attestation manifests (platform unknown/unknown) never match."""
        candidates = [d for d in self.manifests if d.platform is not None and d.platform.matches(want)]
        if not candidates:
            have = ", ".join(str(d.platform) for d in self.manifests if d.platform) or "none"
            raise ManifestError(f"no manifest for platform {want} in index (available: {have})")
        exact = [d for d in candidates if d.platform is not None and d.platform.variant == want.variant]
        return (exact or candidates)[0]


@record
class ImageConfig:
    """The image configuration blob.  ``raw`` is the parsed JSON; accessors validate as they read."""

    raw: Mapping[str, Any]

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        obj = parse_json_document(data, "image config", mt.MAX_CONFIG_BYTES)
        cfg = cls(obj)
        cfg.diff_ids  # noqa: B018 - validate eagerly
        return cfg

    def to_bytes(self) -> bytes:
        return canonical_json(dict(self.raw))

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        rootfs = self.raw.get("rootfs")
        if rootfs is None:
            return ()
        if not isinstance(rootfs, Mapping) or not isinstance(rootfs.get("diff_ids", []), list):
            raise ManifestError("image config: rootfs.diff_ids must be a list")
        return tuple(Digest.parse(d) for d in rootfs.get("diff_ids", []))

    @property
    def platform(self) -> Platform:
        os_ = self.raw.get("os")
        arch = self.raw.get("architecture")
        variant = self.raw.get("variant")
        return Platform(
            os_ if isinstance(os_, str) else "unknown",
            arch if isinstance(arch, str) else "unknown",
            variant if isinstance(variant, str) else None,
        )

    @property
    def container_config(self) -> Mapping[str, Any]:
        c = self.raw.get("config")
        return c if isinstance(c, Mapping) else {}

    def _str_list(self, key: str) -> list[str]:
        v = self.container_config.get(key)
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return list(v)
        return []

    @property
    def env(self) -> list[str]:
        return self._str_list("Env")

    @property
    def entrypoint(self) -> list[str]:
        return self._str_list("Entrypoint")

    @property
    def cmd(self) -> list[str]:
        return self._str_list("Cmd")

    @property
    def user(self) -> str:
        u = self.container_config.get("User")
        return u if isinstance(u, str) else ""

    @property
    def working_dir(self) -> str:
        w = self.container_config.get("WorkingDir")
        return w if isinstance(w, str) else ""

    @property
    def exposed_ports(self) -> list[str]:
        p = self.container_config.get("ExposedPorts")
        return sorted(p) if isinstance(p, Mapping) else []

    @property
    def labels(self) -> dict[str, str]:
        labels = self.container_config.get("Labels")
        if isinstance(labels, Mapping):
            return {str(k): str(v) for k, v in labels.items()}
        return {}

    @property
    def created(self) -> str | None:
        c = self.raw.get("created")
        return c if isinstance(c, str) else None

    @property
    def history(self) -> list[Mapping[str, Any]]:
        h = self.raw.get("history")
        return [x for x in h if isinstance(x, Mapping)] if isinstance(h, list) else []


@record
class ContainerConfig:
    """The ``config`` object of an image config: what a container of the image runs, and as whom.

    Written in Docker's key order; empty fields are left out, except ``Env`` (a builder always states it)."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        out["Env"] = list(self.env)
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


@record
class HistoryEntry:
    """One entry of an image config's ``history``."""

    created_by: str
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"created": self.created} if self.created is not None else {}
        out["created_by"] = self.created_by
        return out


def new_image_config(
    platform: Platform,
    created: str,
    container: ContainerConfig,
    diff_ids: Sequence[Digest],
    history: Sequence[HistoryEntry | Mapping[str, Any]] = (),
) -> ImageConfig:
    """A whole image config (``history`` may carry a base image's entries as they were)."""
    raw: dict[str, Any] = {
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": container.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [str(d) for d in diff_ids]},
        "history": [h.to_json() if isinstance(h, HistoryEntry) else dict(h) for h in history],
    }
    if platform.variant:
        raw["variant"] = platform.variant
    return ImageConfig(raw)


def canonical_json(obj: Any) -> bytes:
    """Compact, key-order-preserving JSON as Docker and go-containerregistry write it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
