"""``giropops verify``: cosign's key-based verification; payloads on stdout, checks on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from giropops.cli._names import GITHUB_CLAIM_NAMES as GITHUB_CLAIMS
from giropops.cli._signing import add_annotations, add_target, open_store, parse_annotations
from giropops.errors import UsageError

if TYPE_CHECKING:  # the verification code is imported by run, not by 'giropops verify --help'
    from giropops.sign.attached import Trust


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="verify an image's cosign signatures (public key or keyless)",
                       description="Passes when at least one signature verifies for the image's digest and carries "
                                   "the required annotations: with --key, or keyless (Fulcio certificate, Rekor "
                                   "entry and CT log checked offline against the Sigstore trusted root, which "
                                   "giropops ships; --trusted-root replaces it). Exit codes: see "
                                   "giropops.sign.errors.")
    p.add_argument("--key", metavar="PUB", help="cosign public key file (cosign.pub)")
    add_certificate_options(p)
    add_annotations(p, "require KEY=VALUE in the signed payload (repeatable)")
    add_target(p)
    p.set_defaults(func=run)


def add_certificate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trusted-root", metavar="FILE",
                   help="Sigstore trusted_root.json to verify keyless signatures with "
                        "(default: the built-in public-good root)")
    p.add_argument("--ca-roots", metavar="PEM",
                   help="instead of --key or a trusted root: trust certificates that chain to these roots (own PKI)")
    p.add_argument("--certificate-identity", metavar="SAN", help="keyless: the signing certificate's exact SAN")
    p.add_argument("--certificate-identity-regexp", metavar="RE",
                   help="keyless: a regular expression the SAN must match (searched, as cosign)")
    p.add_argument("--certificate-oidc-issuer", metavar="URL", help="keyless: the exact OIDC issuer")
    p.add_argument("--certificate-oidc-issuer-regexp", metavar="RE",
                   help="keyless: a regular expression the OIDC issuer must match")
    for claim in GITHUB_CLAIMS:
        p.add_argument(f"--certificate-github-workflow-{claim}", metavar="VALUE", dest=f"github_{claim}",
                       help=f"keyless: the GitHub workflow {claim} in the certificate's Fulcio extensions")
    p.add_argument("--rekor-public-key", metavar="PEM",
                   help="trust this Rekor key (instead of the trusted root's) and require a log entry")
    p.add_argument("--insecure-ignore-tlog", action="store_true",
                   help="do not check the transparency log (keyless: certificates are then checked at the "
                        "current time)")
    p.add_argument("--insecure-ignore-sct", action="store_true",
                   help="keyless: do not require an embedded SCT from a trusted CT log")


def _read(path: str) -> bytes:
    from pathlib import Path

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


_IDENTITY_FLAGS = ("certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer",
                   "certificate_oidc_issuer_regexp", *(f"github_{c}" for c in GITHUB_CLAIMS))


def trust_from_args(args: argparse.Namespace) -> Trust:
    """``--key``, or ``--ca-roots`` (own PKI), or keyless against the (built-in or given) trusted root."""
    import dataclasses
    import re
    from pathlib import Path

    from giropops.sign.attached import Trust
    from giropops.sign.certs import load_pem_certificates
    from giropops.sign.keys import VerifyingKey
    from giropops.sign.rekor import LogKeys
    from giropops.sign.trustroot import TrustedRoot

    a = vars(args)
    roots_file = a.get("ca_roots")
    root_file = a.get("trusted_root")
    if args.key is not None and (roots_file or root_file):
        raise UsageError("--key cannot be combined with --ca-roots or --trusted-root")
    if roots_file and root_file:
        raise UsageError("give --ca-roots or --trusted-root, not both")
    if args.key is not None and any(a.get(f) for f in _IDENTITY_FLAGS):
        raise UsageError("the --certificate-* identity flags are for keyless verification, not with --key")
    for flag in ("certificate_identity_regexp", "certificate_oidc_issuer_regexp"):
        if a.get(flag):
            try:
                re.compile(a[flag])
            except re.error as exc:
                raise UsageError(f"--{flag.replace('_', '-')}: invalid regular expression: {exc}") from exc
    log_keys = None
    if a.get("rekor_public_key"):
        log_keys = LogKeys.from_pems(_read(a["rekor_public_key"]))
    identity = Trust(
        certificate_identity=a.get("certificate_identity"),
        certificate_oidc_issuer=a.get("certificate_oidc_issuer"),
        certificate_identity_regexp=a.get("certificate_identity_regexp"),
        certificate_oidc_issuer_regexp=a.get("certificate_oidc_issuer_regexp"),
        github_claims={c: a[f"github_{c}"] for c in GITHUB_CLAIMS if a.get(f"github_{c}")},
    )
    if args.key is not None:
        return Trust(key=VerifyingKey.load(Path(args.key)), log_keys=log_keys, require_tlog=log_keys is not None)
    if roots_file:
        roots = load_pem_certificates(_read(roots_file), roots_file)
        return dataclasses.replace(identity, roots=roots, log_keys=log_keys, require_tlog=log_keys is not None)
    # keyless, the way cosign v2+ insists: say who must have signed
    if not (identity.certificate_identity or identity.certificate_identity_regexp):
        raise UsageError("--certificate-identity or --certificate-identity-regexp is required for verification "
                         "in keyless mode")
    if not (identity.certificate_oidc_issuer or identity.certificate_oidc_issuer_regexp):
        raise UsageError("--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required for "
                         "verification in keyless mode")
    root = TrustedRoot.load(Path(root_file)) if root_file else TrustedRoot.public_good()
    ignore_tlog = bool(a.get("insecure_ignore_tlog"))
    if log_keys is None and not ignore_tlog:
        log_keys = root.tlog_keys()
    return dataclasses.replace(identity, roots=[ca.root for ca in root.certificate_authorities], trusted_root=root,
                               log_keys=None if ignore_tlog else log_keys, require_tlog=not ignore_tlog,
                               require_sct=not a.get("insecure_ignore_sct"))


def describe_checks(trust: Trust) -> list[str]:
    out = ["The cosign claims were validated"]
    if trust.log_keys is not None:
        out.append("Existence of the claims in the transparency log was verified offline")
    elif trust.key is not None:
        out.append("(no transparency log check: giropops signs without one; pass --rekor-public-key to require it)")
    else:
        out.append("(no transparency log check: --insecure-ignore-tlog)")
    if trust.key is not None:
        out.append("The signatures were verified against the specified public key")
    elif trust.trusted_root is not None:
        out.append("The code-signing certificate was verified using the trusted root's certificate authorities")
        if trust.require_sct:
            out.append("The certificate's SCT was verified with the trusted root's CT log keys")
        out.append("The certificate identity and OIDC issuer matched the --certificate-* flags")
    else:
        out.append("The code-signing certificate was verified using trusted certificate authority certificates")
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from giropops.sign.image import verify_image

    required = parse_annotations(args.annotations)
    trust = trust_from_args(args)
    store = open_store(args)
    result = verify_image(store, trust, required)
    err = sys.stderr
    print(f"\nVerification for {result.subject.display} --", file=err)
    print("The following checks were performed on each of these signatures:", file=err)
    for line in describe_checks(trust):
        print(f"  - {line}", file=err)
    if required:
        print("  - The required annotations were found in the signed payload", file=err)
    print(json.dumps(result.payloads_json(), separators=(",", ":")))
    return 0
