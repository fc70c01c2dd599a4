"""``sign-blob``, ``verify-blob``, ``attest-blob``, ``verify-blob-attestation``: cosign's commands for files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from giropops.cli._names import PREDICATE_TYPE_NAMES
from giropops.cli._signing import load_signing_key, parse_bool, predicate_uri
from giropops.cli.sbom import write_atomically
from giropops.cli.verify import add_certificate_options, describe_checks, trust_from_args
from giropops.cli.verify_attestation import add_policy_option, load_policy
from giropops.errors import UsageError

if TYPE_CHECKING:  # the signing code is imported by the run functions, not by --help
    from giropops.sign.attached import Trust

MAX_INPUT_BYTES = 64 * 1024 * 1024  # signature, bundle and predicate files


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sign-blob", help="sign a file with a cosign key (signature and/or Sigstore bundle)",
                       description="Prints the base64 signature; --output-signature / --bundle write it to files. "
                                   "No transparency log is used (as cosign --tlog-upload=false).")
    p.add_argument("--key", required=True, metavar="KEY", help="cosign private key file (cosign.key)")
    p.add_argument("--output-signature", metavar="FILE", help="write the base64 signature here")
    p.add_argument("--bundle", metavar="FILE", help="write a Sigstore bundle v0.3 here")
    _tlog(p)
    p.add_argument("blob", metavar="BLOB", help="the file to sign")
    p.set_defaults(func=run_sign)

    p = sub.add_parser("verify-blob", help="verify a file's signature or Sigstore / cosign bundle",
                       description="With --key, or keyless (--bundle with a certificate) against the trusted root.")
    p.add_argument("--key", metavar="PUB", help="cosign public key file (cosign.pub)")
    p.add_argument("--signature", metavar="FILE", help="base64 signature file (from sign-blob)")
    p.add_argument("--bundle", metavar="FILE", help="Sigstore bundle (v0.1-v0.3) or old cosign bundle")
    add_certificate_options(p)
    p.add_argument("blob", metavar="BLOB", help="the signed file")
    p.set_defaults(func=run_verify)

    p = sub.add_parser("attest-blob", help="attest a file (in-toto statement in a DSSE envelope)",
                       description="Prints the DSSE envelope unless --output-signature is given.")
    p.add_argument("--key", required=True, metavar="KEY", help="cosign private key file (cosign.key)")
    p.add_argument("--predicate", required=True, metavar="FILE", help="predicate file")
    p.add_argument("--type", default="custom", metavar="TYPE",
                   help=f"predicate type: {'|'.join(PREDICATE_TYPE_NAMES)} or a URI (default custom)")
    p.add_argument("--output-signature", metavar="FILE", help="write the DSSE envelope here")
    p.add_argument("--bundle", metavar="FILE", help="write a Sigstore bundle v0.3 here")
    _tlog(p)
    p.add_argument("blob", metavar="BLOB", help="the file the statement is about")
    p.set_defaults(func=run_attest)

    p = sub.add_parser("verify-blob-attestation", help="verify a file's attestation (DSSE envelope or bundle)")
    p.add_argument("--key", metavar="PUB", help="cosign public key file (cosign.pub)")
    p.add_argument("--signature", metavar="FILE", help="DSSE envelope file (from attest-blob)")
    p.add_argument("--bundle", metavar="FILE", help="Sigstore bundle holding a DSSE envelope")
    p.add_argument("--type", default=None, metavar="TYPE", help="require this predicate type")
    p.add_argument("--check-claims", type=parse_bool, default=True, metavar="BOOL",
                   help="check that a subject of the statement has the blob's sha256 (default true)")
    add_certificate_options(p)
    add_policy_option(p)
    p.add_argument("blob", metavar="BLOB", help="the attested file")
    p.set_defaults(func=run_verify_attestation)


def _tlog(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tlog-upload", type=parse_bool, default=None, metavar="BOOL",
                   help="only false is supported: giropops never uploads to a transparency log")
    p.add_argument("-y", "--yes", action="store_true", help="accepted for cosign compatibility")


def _read(path: str, what: str, limit: int | None = MAX_INPUT_BYTES) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if limit is not None and len(data) > limit:
        raise UsageError(f"{what} {path} is larger than {limit} bytes")
    return data


def _check_outputs(*paths: str | None) -> None:
    for p in paths:
        if p is not None and not Path(p).parent.is_dir():
            raise UsageError(f"{p}: directory {Path(p).parent} does not exist")


def run_sign(args: argparse.Namespace) -> int:
    from giropops.sign.blob import sign_blob
    from giropops.sign.encoding import b64encode

    if args.tlog_upload:
        raise UsageError("--tlog-upload=true is not supported: no transparency log is reachable")
    _check_outputs(args.output_signature, args.bundle)
    blob = _read(args.blob, "blob", None)
    key = load_signing_key(args.key)
    signed = sign_blob(key, blob)
    sig_b64 = b64encode(signed.signature)
    print("Note: no transparency log is used (as cosign --tlog-upload=false).", file=sys.stderr)
    if args.output_signature:
        write_atomically(Path(args.output_signature), sig_b64.encode())
        print(f"Wrote signature to file {args.output_signature}", file=sys.stderr)
    if args.bundle:
        write_atomically(Path(args.bundle), signed.bundle)
        print(f"Wrote bundle to file {args.bundle}", file=sys.stderr)
    if not args.output_signature:
        print(sig_b64)
    return 0


def _one_of(args: argparse.Namespace, what: str) -> None:
    if (args.signature is None) == (args.bundle is None):
        raise UsageError(f"give exactly one of --signature ({what}) or --bundle")
    if args.signature is not None and args.key is None:
        raise UsageError("--signature needs --key; keyless verification needs a --bundle with its certificate")


def _report(trust: Trust, what: str) -> None:
    err = sys.stderr
    for line in describe_checks(trust):
        print(f"  - {line}", file=err)
    print(what, file=err)


def run_verify(args: argparse.Namespace) -> int:
    from giropops.sign.blob import verify_blob

    _one_of(args, "base64 signature")
    trust = trust_from_args(args)
    blob = _read(args.blob, "blob", None)
    if args.signature is not None:
        verify_blob(trust, blob=blob, signature_b64=_read(args.signature, "signature"))
    else:
        verify_blob(trust, blob=blob, bundle_raw=_read(args.bundle, "bundle"))
    _report(trust, "Verified OK")
    return 0


def run_attest(args: argparse.Namespace) -> int:
    from giropops.sign.blob import attest_blob

    if args.tlog_upload:
        raise UsageError("--tlog-upload=true is not supported: no transparency log is reachable")
    predicate_uri(args.type)
    _check_outputs(args.output_signature, args.bundle)
    predicate = _read(args.predicate, "predicate")
    blob = _read(args.blob, "blob", None)
    key = load_signing_key(args.key)
    att = attest_blob(key, blob, Path(args.blob).name, args.type, predicate)
    print("Note: no transparency log is used (as cosign --tlog-upload=false).", file=sys.stderr)
    if args.output_signature:
        write_atomically(Path(args.output_signature), att.envelope)
        print(f"Wrote attestation to file {args.output_signature}", file=sys.stderr)
    if args.bundle:
        write_atomically(Path(args.bundle), att.bundle)
        print(f"Wrote bundle to file {args.bundle}", file=sys.stderr)
    if not args.output_signature and not args.bundle:
        print(att.envelope.decode())
    return 0


def run_verify_attestation(args: argparse.Namespace) -> int:
    from giropops.sign.blob import verify_blob_attestation

    _one_of(args, "DSSE envelope")
    if args.type:
        predicate_uri(args.type)
    policy = load_policy(args)
    trust = trust_from_args(args)
    blob = _read(args.blob, "blob", None)
    if args.signature is not None:
        st = verify_blob_attestation(trust, blob, envelope_raw=_read(args.signature, "envelope"),
                                     predicate_type=args.type, check_claims=args.check_claims)
    else:
        st = verify_blob_attestation(trust, blob, bundle_raw=_read(args.bundle, "bundle"),
                                     predicate_type=args.type, check_claims=args.check_claims)
    if policy is not None:
        policy.check(json.loads(st.raw), f"attestation ({st.predicate_type})")
    _report(trust, "Verified OK")
    print(json.dumps(json.loads(st.raw), separators=(",", ":")))
    return 0
