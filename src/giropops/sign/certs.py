"""Certificate chains for keyless (Fulcio) and bring-your-own-PKI cosign signatures.

Only what verifying cosign's attached certificates needs: each certificate signed by the next, the chain
ending at a trusted root, the validity window covering the signing time, and the signer identity (SAN and
Fulcio's OIDC issuer extension) reported so the caller can compare it with what it expects.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from giropops.sign.encoding import der_read
from giropops.sign.errors import CertificateError
from giropops.sign.keys import VerifyingKey, check_public_key, pem_blocks

FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


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


def verify_chain(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate], at: datetime.datetime | None = None) -> VerifyingKey:
    """Check ``leaf`` chains to one of ``roots``; return the leaf's key."""
    pool = list(intermediates) + list(roots)
    current = leaf
    for _ in range(10):
        _check_time(current, at)
        if any(current == r for r in roots):
            return _leaf_key(leaf)
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


def _check_time(cert: x509.Certificate, at: datetime.datetime | None) -> None:
    if at is None:
        return
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise CertificateError(f"{cert.subject.rfc4514_string()} was not valid at {at.isoformat()}")


def _leaf_key(cert: x509.Certificate) -> VerifyingKey:
    try:
        return VerifyingKey(check_public_key(cert.public_key(), "certificate key"))
    except UnsupportedAlgorithm as exc:
        raise CertificateError(f"unsupported certificate key: {exc}") from exc
