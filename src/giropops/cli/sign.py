"""``giropops sign``: a cosign signature attached to the image (``sha256-<hex>.sig``); no transparency log."""

from __future__ import annotations

import argparse
import sys

from giropops.cli._signing import (
    add_annotations,
    add_target,
    load_signing_key,
    open_store,
    parse_annotations,
    parse_bool,
)
from giropops.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sign", help="sign an image with a cosign key",
                       description="Sign the image's digest and attach the signature as cosign does.")
    p.add_argument("--key", required=True, metavar="KEY", help="cosign private key file (cosign.key)")
    add_annotations(p, "add KEY=VALUE to the signed payload's 'optional' section (repeatable)")
    p.add_argument("--tlog-upload", type=parse_bool, default=None, metavar="BOOL",
                   help="only false is supported: giropops never uploads to a transparency log")
    p.add_argument("-y", "--yes", action="store_true", help="accepted for cosign compatibility (no prompts)")
    add_target(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from giropops.sign.image import sign_image
    from giropops.sign.storage import LayoutStore, RegistryStore

    if args.tlog_upload:
        raise UsageError("--tlog-upload=true is not supported: no transparency log is reachable")
    annotations = parse_annotations(args.annotations)
    key = load_signing_key(args.key)
    store = open_store(args)
    subject = store.subject()
    if isinstance(store, RegistryStore) and store.ref.digest is None:
        print(f"Note: {args.image} is a tag; signing the digest it points to now: "
              f"{store.ref.repository}@{subject.digest}", file=sys.stderr)
    print("Note: no transparency log is used (as cosign --tlog-upload=false); the signature is not logged.",
          file=sys.stderr)
    result = sign_image(store, key, annotations, subject)
    where = (f"{store.ref.repository}:{result.tag}" if isinstance(store, RegistryStore)
             else f"{store.root} (index.json, kind dev.cosignproject.cosign/sigs)" if isinstance(store, LayoutStore)
             else result.tag)
    if result.added:
        print(f"Pushing signature to: {where}", file=sys.stderr)
    else:
        print(f"An identical signature is already attached at {where}", file=sys.stderr)
    print(f"{result.total} signature(s) now attached to {subject.digest}", file=sys.stderr)
    return 0
