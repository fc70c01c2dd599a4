"""The one place ``reco`` and ``policy`` call into ``giropops.sbom``, ``giropops.vuln`` and ``giropops.sign``.

Each function is small on purpose: when one of those packages changes its API, the fix is a
line here.  The imports are plain imports (the layering is oci <- sbom <- vuln, oci <- sign,
with reco and policy above all of them), so type checkers see every call.
"""

from __future__ import annotations

from pathlib import Path

from giropops.errors import ConfigError
from giropops.oci.image import Image
from giropops.oci.model import Digest
from giropops.oci.transport import OCIDirSpec, RegistrySpec, Spec, TransportOptions
from giropops.sbom.generate import generate, subject_for
from giropops.sbom.model import SBOM
from giropops.sign.attached import Trust
from giropops.sign.dsse import InTotoStatement
from giropops.sign.errors import NoMatchingAttestationError
from giropops.sign.image import has_attached, read_attestations_unverified, verify_attestations, verify_image
from giropops.sign.keys import VerifyingKey
from giropops.sign.storage import SBOM_SUFFIX, Store, open_store
from giropops.vuln.db.store import VulnDB, default_path
from giropops.vuln.match import scan as match_scan
from giropops.vuln.model import FindingBrief

# -- SBOM ----------------------------------------------------------------------------------------


def sbom_of(image: Image, name: str) -> SBOM:
    """The SBOM of an image, cataloged by ``giropops.sbom`` (its per-layer cache included)."""
    return generate(image, subject_for(image, name))


# -- vulnerabilities -----------------------------------------------------------------------------


def open_db(path: Path | None) -> VulnDB:
    """The vulnerability database; the caller closes it."""
    return VulnDB(path if path is not None else default_path())


def db_identity(db: VulnDB) -> str:
    """Changes whenever the database content may have changed (part of the profile cache key)."""
    path = Path(db.path)
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def scan(sbom: SBOM, db: VulnDB, severity_source: str = "vendor") -> tuple[FindingBrief, ...]:
    """The counted findings: disputed ones and those the distribution marks not affected are left out."""
    result = match_scan(sbom, db, severity_source=severity_source)
    return tuple(f.brief() for f in result.findings if f.disputed is None)


# -- signatures and attestations -----------------------------------------------------------------

SBOM_PREDICATE_TYPES = ("https://spdx.dev/Document", "https://cyclonedx.org/bom")


def _signed_store(spec: Spec, options: TransportOptions) -> Store:
    store = open_store(spec, options)
    if store is None:
        raise ConfigError(f"{spec}: signatures are kept in registries and OCI layouts only")
    return store


def signatures_supported(spec: Spec) -> bool:
    """Signatures live in registries and OCI layouts only (as cosign stores them)."""
    return isinstance(spec, RegistrySpec | OCIDirSpec)


def _trust(key_path: Path) -> Trust:
    return Trust(key=VerifyingKey.load(key_path))


def verify_signature(spec: Spec, options: TransportOptions, key_path: Path) -> None:
    """Raises a ``VerificationError`` subclass unless a signature of the image verifies with the key."""
    verify_image(_signed_store(spec, options), _trust(key_path))


def verify_sbom_attestation(spec: Spec, options: TransportOptions, key_path: Path) -> str:
    """The predicate type of an SBOM attestation that verifies with the key; raises ``VerificationError``."""
    store = _signed_store(spec, options)
    trust = _trust(key_path)
    mismatches: list[str] = []
    for ptype in SBOM_PREDICATE_TYPES:
        try:
            _, good = verify_attestations(store, trust, ptype)
        except NoMatchingAttestationError as exc:
            mismatches.append(str(exc))
            continue
        if good:
            return ptype
    raise NoMatchingAttestationError("; ".join(mismatches) or "no SBOM attestation")


def statements_unverified(spec: Spec, digest: Digest, options: TransportOptions) -> list[InTotoStatement] | None:
    """UNVERIFIED statements attached to the image (hints, not trust); None when the source holds none."""
    store = open_store(spec, options)
    return None if store is None else read_attestations_unverified(store, digest)


def has_attached_sbom(spec: Spec, digest: Digest, options: TransportOptions) -> bool | None:
    """Whether cosign's ``.sbom`` tag (``cosign attach sbom``) exists; None when the source has no tags."""
    store = open_store(spec, options)
    return None if store is None else has_attached(store, digest, SBOM_SUFFIX)
