"""``giropops verify``: cosign's key-based verification; payloads on stdout, checks on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from giropops.cli._signing import add_annotations, add_target, open_store, parse_annotations
from giropops.errors import UsageError
from giropops.sign.attached import Trust
from giropops.sign.image import verify_image
from giropops.sign.keys import VerifyingKey
from giropops.sign.rekor import LogKeys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="verify an image's cosign signatures with a public key",
                       description="Passes when at least one signature verifies with KEY for the image's digest "
                                   "and carries the required annotations. Exit codes: see giropops.sign.errors.")
    p.add_argument("--key", required=True, metavar="PUB", help="cosign public key file (cosign.pub)")
    add_annotations(p, "require KEY=VALUE in the signed payload (repeatable)")
    p.add_argument("--rekor-public-key", metavar="PEM",
                   help="require and check (offline) a Rekor entry signed by this log key")
    p.add_argument("--insecure-ignore-tlog", action="store_true",
                   help="accepted for cosign compatibility; the log is only checked with --rekor-public-key")
    add_target(p)
    p.set_defaults(func=run)


def trust_from_args(args: argparse.Namespace) -> Trust:
    key = VerifyingKey.load(Path(args.key))
    log_keys = None
    if getattr(args, "rekor_public_key", None):
        try:
            pem = Path(args.rekor_public_key).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.rekor_public_key}: {exc.strerror}") from exc
        log_keys = LogKeys.from_pems(pem)
    return Trust(key=key, log_keys=log_keys, require_tlog=log_keys is not None)


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
    print("  - The signatures were verified against the specified public key", file=err)
    if required:
        print("  - The required annotations were found in the signed payload", file=err)
    print(json.dumps(result.payloads_json(), separators=(",", ":")))
    return 0
