"""cosign key files: ``cosign.key`` (encrypted PKCS#8 in a scrypt + secretbox JSON envelope) and ``cosign.pub``.

The envelope is go-securesystemslib's ``encrypted`` format, base64'd inside a PEM block::

    {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64 32 bytes>"},
     "cipher":{"name":"nacl/secretbox","nonce":"<b64 24 bytes>"},"ciphertext":"<b64>"}

Only the three scrypt cost settings go-securesystemslib itself writes are accepted, and they are checked
before scrypt runs: a hostile key file must not make us allocate gigabytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature

from giropops import jsonio
from giropops.errors import quote_for_error
from giropops.fileio import read_bounded
from giropops.sign.encoding import b64_value, b64decode_strict, b64encode, der_children, der_read
from giropops.sign.errors import (
    KDFParametersError,
    KeyExistsError,
    KeyFormatError,
    NoValidSignatureError,
    SignatureEncodingError,
    UnsupportedKeyError,
    WrongPasswordError,
)

SIGSTORE_PRIVATE_KEY_LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PRIVATE_KEY_LABEL = "ENCRYPTED COSIGN PRIVATE KEY"  # written by cosign before v2
PRIVATE_KEY_LABELS = (SIGSTORE_PRIVATE_KEY_LABEL, COSIGN_PRIVATE_KEY_LABEL)
PUBLIC_KEY_LABEL = "PUBLIC KEY"

# (N, r, p) go-securesystemslib writes: legacy, standard (cosign's default), owasp.  Nothing else is read.
ALLOWED_SCRYPT_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
DEFAULT_SCRYPT_PARAMS = (65536, 8, 1)
_SALT_LEN = 32
_NONCE_LEN = nacl.secret.SecretBox.NONCE_SIZE  # 24
_MAX_KEY_FILE = 64 * 1024

_OID_EC = "1.2.840.10045.2.1"
_OID_RSA = "1.2.840.113549.1.1.1"
_OID_ED25519 = "1.3.101.112"
_SUPPORTED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


# --------------------------------------------------------------------------- PEM


def pem_blocks(text: bytes, what: str) -> list[tuple[str, bytes]]:
    """Every ``-----BEGIN X-----`` block as (label, decoded body); a truncated block is an error."""
    try:
        s = text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise KeyFormatError(f"{what}: not a PEM file (non-ASCII bytes)") from exc
    blocks: list[tuple[str, bytes]] = []
    lines = s.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            label = line[len("-----BEGIN ") : -5]
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("-----END "):
                body.append(lines[i].strip())
                i += 1
            if i >= len(lines) or lines[i].strip() != f"-----END {label}-----":
                raise KeyFormatError(f"{what}: PEM block {quote_for_error(label)} is truncated (no matching END line)")
            if any(":" in b for b in body):
                raise KeyFormatError(f"{what}: PEM headers are not supported")
            try:
                blocks.append((label, b64decode_strict("".join(body), "PEM body")))
            except ValueError as exc:
                raise KeyFormatError(f"{what}: PEM block {quote_for_error(label)}: {exc}") from exc
        i += 1
    if not blocks:
        raise KeyFormatError(f"{what}: no PEM block found")
    return blocks


def pem_encode(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode("ascii")


# --------------------------------------------------------------------------- envelope


def _b64_field(obj: Mapping[str, Any], key: str, what: str) -> bytes:
    return b64_value(obj.get(key), key, lambda m: KeyFormatError(f"{what}: {m}"), f"'{key}' must be a base64 string")


def _int_field(obj: Mapping[str, Any], key: str, what: str) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise KeyFormatError(f"{what}: scrypt parameter '{key}' must be an integer")
    return v


def decrypt_envelope(data: bytes, password: bytes, what: str = "encrypted key") -> bytes:
    """Open a go-securesystemslib ``encrypted`` JSON envelope (what a cosign key's PEM body holds)."""
    obj = jsonio.loads(data, f"{what}: the envelope (is the file truncated?)", error=KeyFormatError)
    if not isinstance(obj, dict):
        raise KeyFormatError(f"{what}: the envelope must be a JSON object")
    kdf = obj.get("kdf")
    cipher = obj.get("cipher")
    if not isinstance(kdf, dict) or not isinstance(cipher, dict):
        raise KeyFormatError(f"{what}: the envelope needs 'kdf' and 'cipher' objects")
    if kdf.get("name") != "scrypt":
        raise KeyFormatError(f"{what}: unsupported key derivation {quote_for_error(kdf.get('name'))} (cosign "
                             f"uses scrypt)")
    params = kdf.get("params")
    if not isinstance(params, dict):
        raise KeyFormatError(f"{what}: kdf 'params' must be an object")
    nrp = (_int_field(params, "N", what), _int_field(params, "r", what), _int_field(params, "p", what))
    # Checked before any work: scrypt's memory is 128*N*r bytes and hostile files pick N.
    if nrp not in ALLOWED_SCRYPT_PARAMS:
        raise KDFParametersError(
            f"{what}: unsupported scrypt parameters N={nrp[0]} r={nrp[1]} p={nrp[2]} "
            "(cosign accepts N=32768|65536|131072, r=8, p=1)"
        )
    salt = _b64_field(kdf, "salt", what)
    if cipher.get("name") != "nacl/secretbox":
        raise KeyFormatError(f"{what}: unsupported cipher {quote_for_error(cipher.get('name'))} (cosign uses "
                             f"nacl/secretbox)")
    nonce = _b64_field(cipher, "nonce", what)
    if len(nonce) != _NONCE_LEN:
        raise KeyFormatError(f"{what}: secretbox nonce must be {_NONCE_LEN} bytes, got {len(nonce)}")
    ciphertext = _b64_field(obj, "ciphertext", what)
    if len(ciphertext) < nacl.secret.SecretBox.MACBYTES:
        raise KeyFormatError(f"{what}: ciphertext is shorter than its authentication tag (truncated?)")
    key = _scrypt(password, salt, nrp)
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError as exc:
        raise WrongPasswordError(f"{what}: decryption failed: wrong password (or the key file was altered)") from exc


def _scrypt(password: bytes, salt: bytes, nrp: tuple[int, int, int]) -> bytes:
    n, r, p = nrp
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def encrypt_envelope(plaintext: bytes, password: bytes, params: tuple[int, int, int] = DEFAULT_SCRYPT_PARAMS) -> bytes:
    """The JSON envelope exactly as go-securesystemslib marshals it (compact, this key order)."""
    if params not in ALLOWED_SCRYPT_PARAMS:
        raise KDFParametersError(f"scrypt parameters {params} are not ones cosign can read")
    salt = secrets.token_bytes(_SALT_LEN)
    nonce = secrets.token_bytes(_NONCE_LEN)
    key = _scrypt(password, salt, params)
    ct = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": params[0], "r": params[1], "p": params[2]}, "salt": b64encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64encode(nonce)},
        "ciphertext": b64encode(ct),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- PKCS#8


def _oid_text(content: bytes) -> str:
    if not content:
        raise ValueError("empty OID")
    parts = [content[0] // 40, content[0] % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def parse_pkcs8(der: bytes, what: str = "private key") -> PrivateKey:
    """A PKCS#8 (RFC 5208 / RFC 5958) private key; SEC1 or PKCS#1 payloads are refused, as cosign does."""
    try:
        outer = der_read(der)
        if outer.tag != 0x30 or outer.end != len(der):
            raise ValueError("not a single DER SEQUENCE")
        kids = der_children(outer.content)
        if len(kids) < 3 or kids[0].tag != 0x02 or kids[1].tag != 0x30 or kids[2].tag != 0x04:
            raise ValueError("not a PKCS#8 PrivateKeyInfo")
        alg = der_children(kids[1].content)
        if not alg or alg[0].tag != 0x06:
            raise ValueError("bad AlgorithmIdentifier")
        oid = _oid_text(alg[0].content)
    except ValueError as exc:
        raise UnsupportedKeyError(
            f"{what}: the decrypted key is not PKCS#8 ({exc}); cosign only reads PKCS#8 private keys"
        ) from exc
    if oid not in (_OID_EC, _OID_RSA, _OID_ED25519):
        raise UnsupportedKeyError(f"{what}: unsupported key algorithm OID {oid}")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        if oid != _OID_ED25519:
            raise UnsupportedKeyError(f"{what}: cannot parse the PKCS#8 key: {exc}") from exc
        key = _ed25519_from_one_asymmetric_key(kids, what)
    return check_private_key(key, what)


def _ed25519_from_one_asymmetric_key(kids: list[Any], what: str) -> ed25519.Ed25519PrivateKey:
    """RFC 8410 v2 (``OneAsymmetricKey`` with the public key embedded), which some builds refuse."""
    try:
        inner = der_read(kids[2].content)
        if inner.tag != 0x04 or len(inner.content) != 32:
            raise ValueError("Ed25519 private key must be a 32-byte OCTET STRING")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(inner.content)
        for extra in kids[3:]:
            if extra.tag == 0x81:  # [1] IMPLICIT BIT STRING publicKey
                embedded = extra.content[1:]
                mine = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                if extra.content[:1] != b"\x00" or embedded != mine:
                    raise ValueError("embedded Ed25519 public key does not match the private key")
    except ValueError as exc:
        raise UnsupportedKeyError(f"{what}: invalid Ed25519 PKCS#8 key: {exc}") from exc
    return key


def _check_curve(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, what: str) -> None:
    if key.curve.name not in _SUPPORTED_CURVES:
        raise UnsupportedKeyError(f"{what}: unsupported curve {key.curve.name}")


def check_private_key(key: Any, what: str) -> PrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _check_curve(key, what)
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise UnsupportedKeyError(f"{what}: unsupported key type {type(key).__name__}")


def check_public_key(key: Any, what: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        _check_curve(key, what)
    if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    raise UnsupportedKeyError(f"{what}: unsupported public key type {type(key).__name__}")


# --------------------------------------------------------------------------- keys


class VerifyingKey:
    """A public key and the way cosign verifies with it (ECDSA DER or r||s, RSA PKCS#1 v1.5, Ed25519)."""

    def __init__(self, key: PublicKey, hash_name: str = "sha256") -> None:
        self.key = key
        self.hash_name = hash_name

    @classmethod
    def from_pem(cls, data: bytes, what: str = "public key") -> VerifyingKey:
        if len(data) > _MAX_KEY_FILE:
            raise KeyFormatError(f"{what}: file too large for a key")
        for label, der in pem_blocks(data, what):
            if label == PUBLIC_KEY_LABEL:
                return cls.from_der(der, what)
        raise KeyFormatError(f"{what}: no '-----BEGIN PUBLIC KEY-----' block")

    @classmethod
    def from_der(cls, der: bytes, what: str = "public key") -> VerifyingKey:
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{what}: not a PKIX public key: {exc}") from exc
        return cls(check_public_key(key, what))

    @classmethod
    def load(cls, path: Path) -> VerifyingKey:
        return cls.from_pem(_read_key_file(path), str(path))

    def der(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def fingerprint(self) -> str:
        """b64(sha256(SPKI DER)): the ``publicKey.hint`` cosign writes into bundles."""
        return b64encode(hashlib.sha256(self.der()).digest())

    def _hash(self) -> hashes.HashAlgorithm:
        if self.hash_name == "sha384":
            return hashes.SHA384()
        if self.hash_name == "sha512":
            return hashes.SHA512()
        return hashes.SHA256()

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise NoValidSignatureError unless ``signature`` is this key's over ``data``."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self._verify_ecdsa(signature, data)
            elif isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, data, padding.PKCS1v15(), self._hash())
            else:
                self.key.verify(signature, data)
        except InvalidSignature as exc:
            raise NoValidSignatureError("signature does not verify with the given key") from exc

    def verify_prehashed(self, signature: bytes, digest: bytes) -> None:
        """Verify over a SHA-256 digest instead of the data (hashedrekord / messageSignature without artifact)."""
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self._verify_ecdsa(signature, digest, prehashed=True)
            elif isinstance(self.key, rsa.RSAPublicKey):
                self.key.verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            else:
                raise NoValidSignatureError("Ed25519 signatures cannot be checked against a digest alone")
        except InvalidSignature as exc:
            raise NoValidSignatureError("signature does not verify with the given key") from exc

    def _verify_ecdsa(self, signature: bytes, data: bytes, prehashed: bool = False) -> None:
        assert isinstance(self.key, ec.EllipticCurvePublicKey)
        algo = ec.ECDSA(Prehashed(hashes.SHA256()) if prehashed else self._hash())
        try:
            decode_dss_signature(signature)
            is_der = True
        except ValueError:
            is_der = False
        if is_der:
            self.key.verify(signature, data, algo)
            return
        size = (self.key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature
        # IEEE P1363 r||s: sigstore's verifier accepts it too (DSSE examples use it).
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        self.key.verify(encode_dss_signature(r, s), data, algo)

    def verify_b64(self, signature_b64: str, data: bytes) -> None:
        try:
            sig = b64decode_strict(signature_b64, "signature")
        except ValueError as exc:
            raise SignatureEncodingError(str(exc)) from exc
        self.verify(sig, data)


class SigningKey:
    def __init__(self, key: PrivateKey) -> None:
        self.key = key

    @classmethod
    def generate(cls) -> SigningKey:
        """ECDSA P-256, what ``cosign generate-key-pair`` makes."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_encrypted_pem(cls, data: bytes, password: bytes, what: str = "private key") -> SigningKey:
        if len(data) > _MAX_KEY_FILE:
            raise KeyFormatError(f"{what}: file too large for a key")
        blocks = pem_blocks(data, what)
        label, body = blocks[0]
        if label not in PRIVATE_KEY_LABELS:
            raise KeyFormatError(
                f"{what}: unsupported PEM type {label!r} (expected {SIGSTORE_PRIVATE_KEY_LABEL!r} "
                f"or {COSIGN_PRIVATE_KEY_LABEL!r})"
            )
        der = decrypt_envelope(body, password, what)
        return cls(parse_pkcs8(der, what))

    @classmethod
    def load(cls, path: Path, password: bytes) -> SigningKey:
        return cls.from_encrypted_pem(_read_key_file(path), password, str(path))

    def pkcs8(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def encrypted_pem(self, password: bytes, params: tuple[int, int, int] = DEFAULT_SCRYPT_PARAMS) -> bytes:
        return pem_encode(SIGSTORE_PRIVATE_KEY_LABEL, encrypt_envelope(self.pkcs8(), password, params))

    def public(self) -> VerifyingKey:
        return VerifyingKey(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        """ECDSA SHA-256 ASN.1 DER (or RSA PKCS#1 v1.5 SHA-256, or Ed25519), as cosign signs."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data)


def _read_key_file(path: Path) -> bytes:
    return read_bounded(path, _MAX_KEY_FILE, "key file", KeyFormatError)


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class KeyPairPaths:
    private: Path
    public: Path


def write_key_pair(prefix: Path, password: bytes, force: bool = False) -> tuple[KeyPairPaths, SigningKey]:
    """``<prefix>.key`` (0600) and ``<prefix>.pub``, each written atomically; existing files kept unless ``force``."""
    paths = KeyPairPaths(prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub"))
    if not force:
        for p in (paths.private, paths.public):
            if p.exists() or p.is_symlink():
                raise KeyExistsError(f"{p} already exists; refusing to overwrite it (use --force)")
    key = SigningKey.generate()
    _atomic_write(paths.private, key.encrypted_pem(password), 0o600, force)
    try:
        _atomic_write(paths.public, key.public().pem(), 0o644, force)
    except BaseException:
        paths.private.unlink(missing_ok=True)  # no half key pair left behind
        raise
    return paths, key


def _atomic_write(dest: Path, data: bytes, mode: int, force: bool) -> None:
    directory = dest.parent if str(dest.parent) else Path(".")
    if force and dest.exists() and not dest.is_file():  # /dev/null, a pipe: never renamed over
        raise KeyFormatError(f"cannot write {dest}: not a regular file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=directory)
    except OSError as exc:
        raise KeyFormatError(f"cannot write {dest}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, mode)  # before any byte of the key is written
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, dest)
        else:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: never clobber
            os.unlink(tmp)
    except FileExistsError as exc:
        _remove(tmp)
        raise KeyExistsError(f"{dest} already exists; refusing to overwrite it (use --force)") from exc
    except OSError as exc:
        _remove(tmp)
        raise KeyFormatError(f"cannot write {dest}: {exc.strerror}") from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
