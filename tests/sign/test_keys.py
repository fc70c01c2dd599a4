"""Keys we write are cosign keys: checked by decrypting them with PyNaCl + hashlib.scrypt directly."""

from __future__ import annotations

import base64
import hashlib
import json
import stat

import nacl.secret
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from giropops.sign import errors as se
from giropops.sign.keys import SigningKey, VerifyingKey, write_key_pair


def _independent_decrypt(pem: bytes, password: bytes) -> bytes:
    lines = pem.decode().strip().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    doc = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"]["name"] == "nacl/secretbox"
    p = doc["kdf"]["params"]
    assert (p["N"], p["r"], p["p"]) == (65536, 8, 1)  # cosign's current default
    salt = base64.b64decode(doc["kdf"]["salt"])
    assert len(salt) == 32
    key = hashlib.scrypt(password, salt=salt, n=p["N"], r=p["r"], p=p["p"], maxmem=2**28, dklen=32)
    return nacl.secret.SecretBox(key).decrypt(base64.b64decode(doc["ciphertext"]),
                                              base64.b64decode(doc["cipher"]["nonce"]))


def test_generated_key_decrypts_independently_to_pkcs8_p256(keypair):
    der = _independent_decrypt(keypair.private.read_bytes(), keypair.password)
    key = serialization.load_der_private_key(der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    # PKCS#8, not SEC1: the AlgorithmIdentifier SEQUENCE follows the version INTEGER
    assert der[0] == 0x30 and b"\x2a\x86\x48\xce\x3d\x02\x01" in der[:30]
    pub = serialization.load_pem_public_key(keypair.public.read_bytes())
    assert pub.public_numbers() == key.public_key().public_numbers()
    assert keypair.public.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")


def test_generated_key_file_modes(keypair):
    assert stat.S_IMODE(keypair.private.stat().st_mode) == 0o600
    assert stat.S_IMODE(keypair.public.stat().st_mode) == 0o644


def test_generated_key_round_trips_through_our_loader(keypair):
    key = SigningKey.load(keypair.private, keypair.password)
    VerifyingKey.load(keypair.public).verify(key.sign(b"data"), b"data")
    with pytest.raises(se.WrongPasswordError):
        SigningKey.load(keypair.private, b"wrong")


def test_existing_key_is_not_overwritten(keypair, tmp_path):
    prefix = tmp_path / "cosign"
    (tmp_path / "cosign.key").write_bytes(b"precious")
    with pytest.raises(se.KeyExistsError):
        write_key_pair(prefix, b"x")
    assert (tmp_path / "cosign.key").read_bytes() == b"precious"
    assert not (tmp_path / "cosign.pub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cosign.key"]


def test_non_pkcs8_payload_rejected(tmp_path):
    sec1 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    from giropops.sign.keys import SIGSTORE_PRIVATE_KEY_LABEL, encrypt_envelope, pem_encode

    pem = pem_encode(SIGSTORE_PRIVATE_KEY_LABEL, encrypt_envelope(sec1, b"pw", (32768, 8, 1)))
    with pytest.raises(se.UnsupportedKeyError):
        SigningKey.from_encrypted_pem(pem, b"pw")


def test_huge_scrypt_cost_rejected_without_running_scrypt():
    salt = base64.b64encode(b"s" * 32).decode()
    doc = {"kdf": {"name": "scrypt", "params": {"N": 2**30, "r": 8, "p": 1}, "salt": salt},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(b"n" * 24).decode()},
           "ciphertext": base64.b64encode(b"c" * 40).decode()}
    from giropops.sign.keys import COSIGN_PRIVATE_KEY_LABEL, pem_encode

    with pytest.raises(se.KDFParametersError):
        SigningKey.from_encrypted_pem(pem_encode(COSIGN_PRIVATE_KEY_LABEL, json.dumps(doc).encode()), b"")


def test_other_pem_label_rejected():
    from giropops.sign.keys import pem_encode

    with pytest.raises(se.KeyFormatError):
        SigningKey.from_encrypted_pem(pem_encode("PRIVATE KEY", b"\x30\x00"), b"")


@pytest.mark.parametrize("make", [
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP521R1()),
    lambda: ed25519.Ed25519PrivateKey.generate(),
    lambda: rsa.generate_private_key(65537, 2048),
], ids=["P-384", "P-521", "Ed25519", "RSA-2048"])
def test_other_cosign_key_types_load_and_sign(make):
    from giropops.sign.keys import COSIGN_PRIVATE_KEY_LABEL, encrypt_envelope, pem_encode

    key = make()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    loaded = SigningKey.from_encrypted_pem(
        pem_encode(COSIGN_PRIVATE_KEY_LABEL, encrypt_envelope(der, b"pw", (32768, 8, 1))), b"pw")
    pub = VerifyingKey.from_pem(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    pub.verify(loaded.sign(b"msg"), b"msg")
    with pytest.raises(se.NoValidSignatureError):
        pub.verify(loaded.sign(b"msg"), b"other")


def test_public_key_in_the_way_leaves_no_private_key(tmp_path):
    (tmp_path / "cosign.pub").write_bytes(b"someone else's")
    with pytest.raises(se.KeyExistsError):
        write_key_pair(tmp_path / "cosign", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cosign.pub"]


def test_unwritable_directory_is_a_clear_error(tmp_path):
    with pytest.raises(se.KeyFormatError):
        write_key_pair(tmp_path / "no" / "such" / "dir" / "cosign", b"x")
