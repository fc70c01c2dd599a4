"""``giropops verify``: cosign's key-based verification; payloads on stdout, checks on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from giropops.cli._signing import add_annotations, add_target, open_store, parse_annotations
from giropops.errors import UsageError
from giropops.sign.attached import Trust
from giropops.sign.certs import load_pem_certificates
from giropops.sign.image import verify_image
from giropops.sign.keys import VerifyingKey
from giropops.sign.rekor import LogKeys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="verify an image's cosign signatures with a public key",
                       description="Passes when at least one signature verifies with KEY for the image's digest "
                                   "and carries the required annotations. Exit codes: see giropops.sign.errors.")
    p.add_argument("--key", metavar="PUB", help="cosign public key file (cosign.pub)")
    add_certificate_options(p)
    add_annotations(p, "require KEY=VALUE in the signed payload (repeatable)")
    p.add_argument("--rekor-public-key", metavar="PEM",
                   help="require and check (offline) a Rekor entry signed by this log key")
    p.add_argument("--insecure-ignore-tlog", action="store_true",
                   help="accepted for cosign compatibility; the log is only checked with --rekor-public-key")
    add_target(p)
    p.set_defaults(func=run)


def add_certificate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ca-roots", metavar="PEM",
                   help="instead of --key: trust signing certificates that chain to these roots (Fulcio or own PKI)")
    p.add_argument("--certificate-identity", metavar="SAN", help="with --ca-roots: required certificate SAN")
    p.add_argument("--certificate-oidc-issuer", metavar="URL", help="with --ca-roots: required OIDC issuer")


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def trust_from_args(args: argparse.Namespace) -> Trust:
    roots_file = getattr(args, "ca_roots", None)
    if (args.key is None) == (roots_file is None):
        raise UsageError("give exactly one of --key or --ca-roots")
    if roots_file is None and (args.certificate_identity or args.certificate_oidc_issuer):
        raise UsageError("--certificate-identity/--certificate-oidc-issuer go with --ca-roots")
    key = VerifyingKey.load(Path(args.key)) if args.key else None
    roots = load_pem_certificates(_read(roots_file), roots_file) if roots_file else []
    log_keys = None
    if getattr(args, "rekor_public_key", None):
        log_keys = LogKeys.from_pems(_read(args.rekor_public_key))
    return Trust(key=key, roots=roots, log_keys=log_keys, require_tlog=log_keys is not None,
                 certificate_identity=getattr(args, "certificate_identity", None),
                 certificate_oidc_issuer=getattr(args, "certificate_oidc_issuer", None))


def run(args: argparse.Namespace) -> int:
    required = parse_annotations(args.annotations)
    trust = trust_from_args(args)
    store = open_store(args)
    result = verify_image(store, trust, required)
    err = sys.stderr
    print(f"\nVerification for {result.subject.display} --", file=err)
    print("The following checks were performed on each of these signatures:", file=err)
    print("  - The cosign claims were validated", file=err)
    if trust.log_keys is not None:
        print("  - Existence of the claims in the transparency log was verified offline", file=err)
    else:
        print("  - (no transparency log check: giropops signs without one; pass --rekor-public-key to require it)",
              file=err)
    if trust.key is not None:
        print("  - The signatures were verified against the specified public key", file=err)
    else:
        print("  - The code-signing certificate was verified using trusted certificate authority certificates",
              file=err)
    if required:
        print("  - The required annotations were found in the signed payload", file=err)
    print(json.dumps(result.payloads_json(), separators=(",", ":")))
    return 0
