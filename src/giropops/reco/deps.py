"""The one place ``reco`` and ``policy`` call into ``giropops.sbom``, ``giropops.vuln`` and ``giropops.sign``.

Each function is small on purpose: when one of those packages changes its API, the fix is a
line here.  Imports are local so that a build without one of them fails with a clear
``ConfigError`` naming what is missing, only when that part is actually needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from giropops.errors import ConfigError
from giropops.oci.image import Image
from giropops.oci.transport import OCIDirSpec, RegistrySpec, Spec, TransportOptions

if TYPE_CHECKING:
    from giropops.sbom.model import SBOM


def _module(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"this giropops has no {what} ({name}): {exc}") from exc


# -- SBOM ----------------------------------------------------------------------------------------


def sbom_of(image: Image, name: str) -> SBOM:
    """The SBOM of an image, cataloged by ``giropops.sbom`` (its per-layer cache included)."""
    gen = _module("giropops.sbom.generate", "SBOM generator")
    sbom: SBOM = gen.generate(image, gen.subject_for(image, name))
    return sbom


# -- vulnerabilities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerability of one package, as the recommendations and policies need it."""

    id: str
    package: str
    package_type: str
    version: str
    severity: str  # critical | high | medium | low | negligible | unspecified
    fixed_version: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        """What "the same vulnerability" means across two images: id, package type and name."""
        return (self.id, self.package_type, self.package)


def open_db(path: Path | None) -> Any:
    """The vulnerability database (``VulnDB``); the caller closes it."""
    store = _module("giropops.vuln.db.store", "vulnerability database")
    return store.VulnDB(path if path is not None else store.default_path())


def db_identity(db: Any) -> str:
    """Changes whenever the database content may have changed (part of the profile cache key)."""
    path = Path(db.path)
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def scan(sbom: SBOM, db: Any, severity_source: str = "vendor") -> tuple[Vulnerability, ...]:
    """The counted findings: disputed ones and those the distribution marks not affected are left out."""
    match = _module("giropops.vuln.match", "vulnerability matcher")
    result = match.scan(sbom, db, severity_source=severity_source)
    return tuple(
        Vulnerability(
            id=f.vuln_id, package=f.package.name, package_type=f.package.type, version=f.package.version,
            severity=f.severity.level, fixed_version=f.fixed_version,
        )
        for f in result.findings if f.disputed is None
    )


# -- signatures and attestations -----------------------------------------------------------------

SBOM_PREDICATE_TYPES = ("https://spdx.dev/Document", "https://cyclonedx.org/bom")


def _store(spec: Spec, options: TransportOptions) -> Any:
    storage = _module("giropops.sign.storage", "signature support")
    if isinstance(spec, RegistrySpec):
        from giropops.oci.registry import RegistryClient, RegistryOptions

        client = RegistryClient(spec.ref.registry_host, RegistryOptions(
            insecure=options.insecure, username=options.username, password=options.password,
            docker_config=options.docker_config,
        ))
        return storage.RegistryStore(client, spec.ref)
    if isinstance(spec, OCIDirSpec):
        return storage.LayoutStore(spec.path, spec.name, spec.digest)
    return None


def signatures_supported(spec: Spec) -> bool:
    """Signatures live in registries and OCI layouts only (as cosign stores them)."""
    return isinstance(spec, RegistrySpec | OCIDirSpec)


def _trust(key_path: Path) -> Any:
    keys = _module("giropops.sign.keys", "signature support")
    attached = _module("giropops.sign.attached", "signature support")
    return attached.Trust(key=keys.VerifyingKey.load(key_path))


def verify_signature(spec: Spec, options: TransportOptions, key_path: Path) -> None:
    """Raises a ``VerificationError`` subclass unless a signature of the image verifies with the key."""
    image_mod = _module("giropops.sign.image", "signature support")
    image_mod.verify_image(_store(spec, options), _trust(key_path))


def verify_sbom_attestation(spec: Spec, options: TransportOptions, key_path: Path) -> str:
    """The predicate type of an SBOM attestation that verifies with the key; raises ``VerificationError``."""
    image_mod = _module("giropops.sign.image", "signature support")
    errors_mod = _module("giropops.sign.errors", "signature support")
    store = _store(spec, options)
    trust = _trust(key_path)
    mismatches: list[str] = []
    for ptype in SBOM_PREDICATE_TYPES:
        try:
            _, good = image_mod.verify_attestations(store, trust, ptype)
        except errors_mod.NoMatchingAttestationError as exc:
            mismatches.append(str(exc))
            continue
        if good:
            return ptype
    raise errors_mod.NoMatchingAttestationError("; ".join(mismatches) or "no SBOM attestation")

