"""``giropops attest``: an in-toto statement in a DSSE envelope, attached as ``sha256-<hex>.att``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from giropops.cli._names import PREDICATE_TYPE_NAMES
from giropops.cli._registry import transport_options
from giropops.cli._signing import add_target, load_signing_key, open_store, parse_bool, predicate_uri
from giropops.errors import UsageError

if TYPE_CHECKING:  # the signing code is imported by run, not by 'giropops attest --help'
    from giropops.oci.model import Digest
    from giropops.oci.transport import Spec, TransportOptions

_SBOM_FORMATS = {"cyclonedx": "cyclonedx-json", "spdxjson": "spdx-json"}
MAX_PREDICATE_BYTES = 64 * 1024 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attest", help="attest an image (in-toto statement, DSSE, cosign layout)")
    p.add_argument("--key", required=True, metavar="KEY", help="cosign private key file (cosign.key)")
    p.add_argument("--type", default="custom", metavar="TYPE",
                   help=f"predicate type: {'|'.join(PREDICATE_TYPE_NAMES)} or a URI (default custom)")
    p.add_argument("--predicate", metavar="FILE",
                   help="predicate file; without it, cyclonedx/spdxjson attest the SBOM giropops generates")
    p.add_argument("--tlog-upload", type=parse_bool, default=None, metavar="BOOL",
                   help="only false is supported: giropops never uploads to a transparency log")
    p.add_argument("-y", "--yes", action="store_true", help="accepted for cosign compatibility")
    add_target(p)
    p.set_defaults(func=run)


def _generated_sbom(image: Spec, ptype: str, options: TransportOptions) -> bytes:
    fmt = _SBOM_FORMATS.get(ptype)
    if fmt is None:
        raise UsageError(f"--predicate is required for --type {ptype}")
    # imported here: only attesting a generated SBOM needs the catalogers
    from giropops.sbom import sbom_for
    from giropops.sbom.formats import encode

    return encode(sbom_for(image, options=options), fmt)


def _pinned_spec(store: object, digest: Digest) -> Spec:
    from giropops.oci.reference import Reference
    from giropops.oci.transport import OCIDirSpec, RegistrySpec
    from giropops.sign.storage import LayoutStore, RegistryStore

    if isinstance(store, RegistryStore):
        return RegistrySpec(Reference(store.ref.domain, store.ref.path, digest=digest))
    if isinstance(store, LayoutStore):
        return OCIDirSpec(store.root, digest=digest)
    raise UsageError("cannot generate an SBOM for this kind of image store")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from giropops.fileio import read_bounded
    from giropops.sign.image import attest_image

    if args.tlog_upload:
        raise UsageError("--tlog-upload=true is not supported: no transparency log is reachable")
    uri = predicate_uri(args.type)
    if args.predicate:
        path = Path(args.predicate)
        predicate = read_bounded(path, MAX_PREDICATE_BYTES, "predicate", UsageError)
    elif args.type not in _SBOM_FORMATS:
        raise UsageError(f"--predicate is required for --type {args.type}")
    key = load_signing_key(args.key)
    options = transport_options(args)
    store = open_store(args, options)
    subject = store.subject()
    if not args.predicate:
        # the SBOM of exactly the digest being attested, even if the tag moves meanwhile
        predicate = _generated_sbom(_pinned_spec(store, subject.digest), args.type, options)
        print(f"Generated a {args.type} SBOM of {subject.digest}", file=sys.stderr)
    print("Note: no transparency log is used (as cosign --tlog-upload=false).", file=sys.stderr)
    result = attest_image(store, key, args.type, predicate, subject=subject)
    print(f"Attestation ({uri}) attached to {result.subject.digest} at {result.tag} "
          f"({result.total} attestation(s))", file=sys.stderr)
    return 0
