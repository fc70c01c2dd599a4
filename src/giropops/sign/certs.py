"""Certificate chains for keyless (Fulcio) and bring-your-own-PKI cosign signatures.

Only what verifying cosign's attached certificates needs: each certificate signed by the next, the chain
ending at a trusted root, the validity window covering the signing time, and the signer identity (SAN and
Fulcio's OIDC issuer extension) reported so the caller can compare it with what it expects.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from giropops.sign.encoding import der_read
from giropops.sign.errors import (
    CertificateError,
    CertificateIdentityError,
    CertificateIssuerError,
    CertificateValidityError,
    NoValidSignatureError,
    SCTError,
)
from giropops.sign.keys import VerifyingKey, check_public_key, pem_blocks

FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_FULCIO = "1.3.6.1.4.1.57264.1."

# cosign's --certificate-github-workflow-* claims: (deprecated raw-string OID, newer DER UTF8String OID).
# The newer extensions have no workflow name; their repository is a URI (https://github.com/OWNER/REPO).
GITHUB_CLAIMS: Mapping[str, tuple[str, str | None]] = {
    "trigger": (_FULCIO + "2", _FULCIO + "20"),  # BuildTrigger
    "sha": (_FULCIO + "3", _FULCIO + "13"),  # SourceRepositoryDigest
    "name": (_FULCIO + "4", None),
    "repository": (_FULCIO + "5", _FULCIO + "12"),  # SourceRepositoryURI
    "ref": (_FULCIO + "6", _FULCIO + "14"),  # SourceRepositoryRef
}


def load_pem_certificates(data: bytes, what: str = "certificates") -> list[x509.Certificate]:
    out = []
    for label, der in pem_blocks(data, what):
        if label == "CERTIFICATE":
            try:
                out.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                raise CertificateError(f"{what}: invalid certificate: {exc}") from exc
    if not out:
        raise CertificateError(f"{what}: no certificate found")
    return out


@dataclass(frozen=True)
class Identity:
    subject_alternative_names: tuple[str, ...]
    oidc_issuer: str | None


def identity(cert: x509.Certificate) -> Identity:
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans += ext.get_values_for_type(x509.RFC822Name)
        sans += ext.get_values_for_type(x509.UniformResourceIdentifier)
        sans += ext.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    issuer: str | None = None
    for e in cert.extensions:
        if e.oid == FULCIO_ISSUER_V2 and isinstance(e.value, x509.UnrecognizedExtension):
            try:
                issuer = der_read(e.value.value).content.decode()
            except (ValueError, UnicodeDecodeError):
                issuer = None
        elif e.oid == FULCIO_ISSUER_V1 and issuer is None and isinstance(e.value, x509.UnrecognizedExtension):
            issuer = e.value.value.decode("utf-8", "replace")
    return Identity(tuple(sans), issuer)


def _extension(cert: x509.Certificate, oid: str) -> bytes | None:
    for e in cert.extensions:
        if e.oid.dotted_string == oid and isinstance(e.value, x509.UnrecognizedExtension):
            return e.value.value
    return None


def github_claim(cert: x509.Certificate, name: str) -> str | None:
    """A GitHub workflow claim of a Fulcio certificate: the deprecated extension, else its newer twin."""
    old, new = GITHUB_CLAIMS[name]
    raw = _extension(cert, old)
    if raw is not None:
        return raw.decode("utf-8", "replace")
    raw = _extension(cert, new) if new else None
    if raw is None:
        return None
    try:
        text = der_read(raw).content.decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if name == "repository":
        text = text.removeprefix("https://github.com/")
    return text


@dataclass(frozen=True)
class IdentityPolicy:
    """What cosign v2+ requires of a keyless signer (``--certificate-identity`` and friends).

    Regular expressions are searched, not anchored, exactly as cosign's Go ``regexp.MatchString``.
    """

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None
    github: Mapping[str, str] = field(default_factory=dict)

    def check(self, cert: x509.Certificate) -> None:
        ident = identity(cert)
        sans = ident.subject_alternative_names
        if self.identity is not None and self.identity not in sans:
            raise CertificateIdentityError(
                f"certificate identity is {', '.join(sans) or 'empty'}, expected {self.identity}")
        if self.identity_regexp is not None and not any(re.search(self.identity_regexp, s) for s in sans):
            raise CertificateIdentityError(
                f"certificate identity {', '.join(sans) or 'empty'} does not match {self.identity_regexp!r}")
        if self.issuer is not None and ident.oidc_issuer != self.issuer:
            raise CertificateIssuerError(f"certificate OIDC issuer is {ident.oidc_issuer}, expected {self.issuer}")
        if self.issuer_regexp is not None and (ident.oidc_issuer is None
                                               or not re.search(self.issuer_regexp, ident.oidc_issuer)):
            raise CertificateIssuerError(
                f"certificate OIDC issuer {ident.oidc_issuer} does not match {self.issuer_regexp!r}")
        for name, want in self.github.items():
            got = github_claim(cert, name)
            if got != want:
                raise CertificateIdentityError(f"certificate GitHub workflow {name} is {got}, expected {want}")


def verify_embedded_sct(leaf: x509.Certificate, issuer: x509.Certificate, ct_keys: Mapping[str, VerifyingKey]) -> None:
    """RFC 6962 section 3.2: one embedded SCT must verify with a trusted CT log key over the precertificate."""
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound as exc:
        raise SCTError("the certificate has no embedded signed certificate timestamp (SCT)") from exc
    tbs = leaf.tbs_precertificate_bytes
    issuer_key_hash = hashlib.sha256(issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    unknown = []
    for sct in scts:
        key = ct_keys.get(sct.log_id.hex())
        if key is None:
            unknown.append(sct.log_id.hex())
            continue
        ts = sct.timestamp.replace(tzinfo=datetime.UTC)
        millis = int(ts.timestamp()) * 1000 + ts.microsecond // 1000
        ext = sct.extension_bytes
        signed = (b"\x00\x00" + millis.to_bytes(8, "big") + b"\x00\x01" + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs + len(ext).to_bytes(2, "big") + ext)
        try:
            key.verify(sct.signature, signed)
        except NoValidSignatureError:
            continue
        return
    if unknown and len(unknown) == len(scts):
        raise SCTError(f"the certificate's SCT is from an untrusted CT log ({', '.join(unknown)})")
    raise SCTError("the certificate's SCT does not verify with the CT log's key")


def issuer_of(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> x509.Certificate:
    for c in pool:
        if c.subject == cert.issuer and c != cert:
            try:
                cert.verify_directly_issued_by(c)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return c
    raise CertificateError(f"no issuer certificate for {cert.subject.rfc4514_string()}")


def verify_chain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], at: datetime.datetime | None = None) -> VerifyingKey:
    """Check ``leaf`` chains to one of ``roots``; return the leaf's key."""
    pool = list(intermediates) + list(roots)
    current = leaf
    for _ in range(10):
        check_time(current, at)
        if any(current == r for r in roots):
            return leaf_key(leaf)
        issuer = next((c for c in pool if c.subject == current.issuer and c != current), None)
        if issuer is None:
            raise CertificateError(f"no issuer certificate for {current.subject.rfc4514_string()}")
        try:
            current.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
            raise CertificateError(
                f"{current.subject.rfc4514_string()} is not signed by {issuer.subject.rfc4514_string()}"
            ) from exc
        current = issuer
    raise CertificateError("certificate chain is too long")


def check_time(cert: x509.Certificate, at: datetime.datetime | None) -> None:
    if at is None:
        return
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise CertificateValidityError(
            f"certificate {cert.subject.rfc4514_string() or '(keyless)'} was not valid at {at.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})")


def leaf_key(cert: x509.Certificate) -> VerifyingKey:
    try:
        return VerifyingKey(check_public_key(cert.public_key(), "certificate key"))
    except UnsupportedAlgorithm as exc:
        raise CertificateError(f"unsupported certificate key: {exc}") from exc
