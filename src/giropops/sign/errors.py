"""Why a key could not be used or a signature was refused: one class and one exit code per reason.

Callers (and scripts calling the CLI) tell reasons apart by class or exit code, never by message.

Key problems (``SigningKeyError``)::

    KeyFormatError            30  not a cosign key / PEM / JSON, truncated, bad base64, unknown label
    WrongPasswordError        31  secretbox refused to open: wrong password (or a tampered ciphertext)
    UnsupportedKeyError       32  decrypted, but not PKCS#8, or an algorithm/curve cosign does not use
    KDFParametersError        33  scrypt parameters other than the ones cosign accepts (checked before scrypt)
    KeyExistsError            34  refusing to overwrite an existing key file without ``force``

Verification failures (``VerificationError``; exit 10 for the base class)::

    NoSignaturesError         11  nothing is attached to the image (no ``.sig`` / ``.att`` / bundle)
    NoValidSignatureError     12  signatures exist, none verifies with the given key
    DigestMismatchError       13  a valid signature, but for another manifest digest
    AnnotationsMismatchError  14  valid signatures, none carries the required annotations
    PayloadMalformedError     15  the signed payload / envelope / statement is not what cosign writes
    SignatureEncodingError    16  the signature is not strict base64 / not a signature encoding
    BlobMismatchError         17  the registry served a blob that does not match its digest
    TransparencyLogError      18  a Rekor SET, inclusion proof or checkpoint does not verify
    CertificateError          19  a certificate does not chain, or its identity does not match
    BundleError               20  a sigstore bundle is malformed or inconsistent
    SubjectMismatchError      21  an attestation's subjects do not name this image / artifact
    NoMatchingAttestationError 22 attestations exist, none has the requested predicate type
    NotSimpleSigningError     23  the layer is not a simple-signing payload (other attachment type)
    IdentityMismatchError     24  the signed docker-reference is not the expected image name

Keyless (Fulcio / Rekor / CT) failures, each a subclass of the one above it in this list's order::

    CertificateIdentityError  25  (CertificateError) the certificate's SAN or GitHub workflow claims do not match
    CertificateIssuerError    26  (CertificateError) the certificate's OIDC issuer does not match
    CertificateValidityError  27  (CertificateError) the signing time is outside a certificate's validity
    LogEntryMismatchError     28  (TransparencyLogError) the log entry records another signature (grafted SET)
    SignedEntryTimestampError 29  (TransparencyLogError) the SET does not verify with the log's key
    InclusionProofError       35  (TransparencyLogError) inclusion proof or checkpoint does not verify
    SCTError                  36  (CertificateError) no embedded SCT verifies with a trusted CT log key

Policy::

    PolicyViolationError      37  a verified attestation does not satisfy the --policy (Rego)
"""

from __future__ import annotations

from giropops.errors import SigningKeyError, VerificationError


class KeyFormatError(SigningKeyError):
    exit_code = 30


class WrongPasswordError(SigningKeyError):
    exit_code = 31


class UnsupportedKeyError(SigningKeyError):
    exit_code = 32


class KDFParametersError(SigningKeyError):
    exit_code = 33


class KeyExistsError(SigningKeyError):
    exit_code = 34


class NoSignaturesError(VerificationError):
    exit_code = 11


class NoValidSignatureError(VerificationError):
    exit_code = 12


class DigestMismatchError(VerificationError):
    exit_code = 13


class AnnotationsMismatchError(VerificationError):
    exit_code = 14


class PayloadMalformedError(VerificationError):
    exit_code = 15


class SignatureEncodingError(VerificationError):
    exit_code = 16


class BlobMismatchError(VerificationError):
    exit_code = 17


class TransparencyLogError(VerificationError):
    exit_code = 18


class CertificateError(VerificationError):
    exit_code = 19


class BundleError(VerificationError):
    exit_code = 20


class SubjectMismatchError(VerificationError):
    exit_code = 21


class NoMatchingAttestationError(VerificationError):
    exit_code = 22


class NotSimpleSigningError(VerificationError):
    exit_code = 23


class IdentityMismatchError(VerificationError):
    exit_code = 24


class CertificateIdentityError(CertificateError):
    exit_code = 25


class CertificateIssuerError(CertificateError):
    exit_code = 26


class CertificateValidityError(CertificateError):
    exit_code = 27


class LogEntryMismatchError(TransparencyLogError):
    exit_code = 28


class SignedEntryTimestampError(TransparencyLogError):
    exit_code = 29


class InclusionProofError(TransparencyLogError):
    exit_code = 35


class SCTError(CertificateError):
    exit_code = 36


class PolicyViolationError(VerificationError):
    exit_code = 37
