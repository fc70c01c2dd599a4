"""``giropops verify-attestation``: DSSE signature, subject digest, predicate type; statements on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from giropops import jsonio
from giropops.cli._names import PREDICATE_TYPE_NAMES
from giropops.cli._signing import add_target, open_store, predicate_uri
from giropops.cli.verify import add_certificate_options, describe_checks, trust_from_args

if TYPE_CHECKING:  # the verification code is imported by run, not by --help
    from giropops.sign.regopolicy import RegoPolicy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify-attestation", help="verify an image's attestations (public key or keyless)")
    p.add_argument("--key", metavar="PUB", help="cosign public key file (cosign.pub)")
    add_certificate_options(p)
    p.add_argument("--type", default=None, metavar="TYPE",
                   help=f"only attestations of this predicate type ({'|'.join(PREDICATE_TYPE_NAMES)} or a URI)")
    add_policy_option(p)
    add_target(p)
    p.set_defaults(func=run)


def add_policy_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", metavar="FILE",
                   help="Rego policy (package signature, rule allow) every verified statement must satisfy; "
                        "the statement is the input, as in cosign")


def load_policy(args: argparse.Namespace) -> RegoPolicy | None:
    from pathlib import Path

    from giropops.sign.regopolicy import RegoPolicy

    return RegoPolicy.load(Path(args.policy)) if getattr(args, "policy", None) else None


def run(args: argparse.Namespace) -> int:
    from giropops.sign.image import verify_attestations

    if args.type:
        predicate_uri(args.type)
    policy = load_policy(args)
    trust = trust_from_args(args)
    store = open_store(args)
    subject, atts = verify_attestations(store, trust, args.type)
    if policy is not None:
        for a in atts:
            policy.check(json.loads(a.statement.raw), f"attestation ({a.statement.predicate_type})")
    err = sys.stderr
    print(f"\nVerification for {subject.display} --", file=err)
    print("The following checks were performed on each of these signatures:", file=err)
    for line in describe_checks(trust):
        print(f"  - {line}", file=err)
    print("  - The statement's subject digest matches the image", file=err)
    if policy is not None:
        print(f"  - Every attestation satisfies the policy {policy.name}", file=err)
    for a in atts:
        print(json.dumps(jsonio.loads(a.statement.raw, "in-toto statement"), separators=(",", ":")))
    return 0
