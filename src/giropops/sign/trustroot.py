"""Sigstore ``trusted_root.json``: the Fulcio CAs, Rekor and CT log keys keyless verification trusts.

The format is Sigstore's (``application/vnd.dev.sigstore.trustedroot+json;version=0.1``, protobuf JSON).
giropops ships the public-good instance's root as package data (``giropops/data/sigstore``, see its
PROVENANCE) and never refreshes it over the network: ``--trusted-root FILE`` replaces it (a private
Sigstore, an air-gapped copy, a newer root).  Fulcio CAs and CT log keys are trusted only within their
``validFor`` window, checked against the signing time; Rekor keys are trusted by log ID alone.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509

from giropops.sign.encoding import b64decode_strict
from giropops.sign.errors import CertificateError, KeyFormatError
from giropops.sign.keys import VerifyingKey
from giropops.sign.rekor import LogKeys

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024


class TrustedRootError(CertificateError):
    """The trusted root file itself is unreadable or malformed (exit code of ``CertificateError``)."""


def _time(v: Any, what: str) -> datetime.datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise TrustedRootError(f"trusted root: {what} must be an RFC 3339 string")
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TrustedRootError(f"trusted root: {what}: {exc}") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t


@dataclass(frozen=True)
class Validity:
    start: datetime.datetime | None
    end: datetime.datetime | None

    @classmethod
    def from_json(cls, obj: Any, what: str) -> Validity:
        if obj is None:
            return cls(None, None)
        if not isinstance(obj, Mapping):
            raise TrustedRootError(f"trusted root: {what}.validFor must be an object")
        return cls(_time(obj.get("start"), f"{what}.validFor.start"), _time(obj.get("end"), f"{what}.validFor.end"))

    def contains(self, t: datetime.datetime) -> bool:
        return (self.start is None or self.start <= t) and (self.end is None or t <= self.end)


@dataclass(frozen=True)
class CertificateAuthority:
    uri: str
    chain: tuple[x509.Certificate, ...]  # issuing certificate first, root last
    validity: Validity

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]


@dataclass(frozen=True)
class LogKey:
    uri: str
    log_id_hex: str
    key: VerifyingKey
    validity: Validity


def _b64(v: Any, what: str) -> bytes:
    if not isinstance(v, str):
        raise TrustedRootError(f"trusted root: {what} must be a base64 string")
    try:
        return b64decode_strict(v, what)
    except ValueError as exc:
        raise TrustedRootError(f"trusted root: {exc}") from exc


def _logs(items: Any, what: str) -> tuple[LogKey, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise TrustedRootError(f"trusted root: {what} must be a list")
    out = []
    for i, t in enumerate(items):
        w = f"{what}[{i}]"
        if not isinstance(t, Mapping) or not isinstance(t.get("publicKey"), Mapping):
            raise TrustedRootError(f"trusted root: {w} has no publicKey")
        pk = t["publicKey"]
        raw = _b64(pk.get("rawBytes"), f"{w}.publicKey.rawBytes")
        log_id = _b64((t.get("logId") or {}).get("keyId"), f"{w}.logId.keyId").hex()
        try:
            key = VerifyingKey.from_der(raw, f"{w} key")
        except KeyFormatError as exc:
            raise TrustedRootError(f"trusted root: {exc}") from exc
        out.append(LogKey(str(t.get("baseUrl", "")), log_id, key, Validity.from_json(pk.get("validFor"), w)))
    return tuple(out)


@dataclass(frozen=True)
class TrustedRoot:
    certificate_authorities: tuple[CertificateAuthority, ...]
    tlogs: tuple[LogKey, ...]
    ctlogs: tuple[LogKey, ...]

    @classmethod
    def from_bytes(cls, raw: bytes, what: str = "trusted root") -> TrustedRoot:
        if len(raw) > MAX_TRUSTED_ROOT_BYTES:
            raise TrustedRootError(f"{what}: larger than {MAX_TRUSTED_ROOT_BYTES} bytes")
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TrustedRootError(f"{what} is not JSON: {exc}") from exc
        return cls.from_json(obj, what)

    @classmethod
    def from_json(cls, obj: Any, what: str = "trusted root") -> TrustedRoot:
        if not isinstance(obj, Mapping):
            raise TrustedRootError(f"{what} must be a JSON object")
        if obj.get("mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
            raise TrustedRootError(f"{what}: unsupported media type {obj.get('mediaType')!r}")
        cas = []
        items = obj.get("certificateAuthorities") or []
        if not isinstance(items, list):
            raise TrustedRootError(f"{what}: certificateAuthorities must be a list")
        for i, ca in enumerate(items):
            w = f"certificateAuthorities[{i}]"
            certs = ((ca or {}).get("certChain") or {}).get("certificates") if isinstance(ca, Mapping) else None
            if not isinstance(certs, list) or not certs:
                raise TrustedRootError(f"{what}: {w} has no certChain")
            chain = []
            for c in certs:
                try:
                    chain.append(x509.load_der_x509_certificate(_b64((c or {}).get("rawBytes"), f"{w} certificate")))
                except (ValueError, AttributeError) as exc:
                    raise TrustedRootError(f"{what}: {w}: invalid certificate: {exc}") from exc
            cas.append(CertificateAuthority(str(ca.get("uri", "")), tuple(chain),
                                            Validity.from_json(ca.get("validFor"), w)))
        return cls(tuple(cas), _logs(obj.get("tlogs"), "tlogs"), _logs(obj.get("ctlogs"), "ctlogs"))

    @classmethod
    def load(cls, path: Path) -> TrustedRoot:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TrustedRootError(f"cannot read trusted root {path}: {exc.strerror}") from exc
        return cls.from_bytes(raw, str(path))

    @classmethod
    def public_good(cls) -> TrustedRoot:
        """The Sigstore public-good root shipped with giropops."""
        raw = resources.files("giropops").joinpath("data/sigstore/trusted_root.json").read_bytes()
        return cls.from_bytes(raw, "built-in trusted root")

    def tlog_keys(self) -> LogKeys:
        return LogKeys({t.log_id_hex: t.key for t in self.tlogs})

    def ct_keys(self, at: datetime.datetime | None = None) -> LogKeys:
        """CT log keys (only those valid at ``at`` when given)."""
        return LogKeys({t.log_id_hex: t.key for t in self.ctlogs if at is None or t.validity.contains(at)})

    def authorities_at(self, when: datetime.datetime) -> Sequence[CertificateAuthority]:
        return [ca for ca in self.certificate_authorities if ca.validity.contains(when)]
