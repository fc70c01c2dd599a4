"""``giropops generate-key-pair``: ``cosign.key`` (encrypted, 0600) and ``cosign.pub``, as cosign writes them."""

from __future__ import annotations

import argparse
import sys

from giropops.cli._signing import read_password


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("generate-key-pair", help="generate a cosign key pair (ECDSA P-256)",
                       description="Write PREFIX.key (encrypted with COSIGN_PASSWORD or a prompted password) "
                                   "and PREFIX.pub.")
    p.add_argument("--output-key-prefix", default="cosign", metavar="PREFIX", help="file name prefix (default cosign)")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from giropops.sign.keys import write_key_pair

    password = read_password(confirm=True)
    paths, _ = write_key_pair(Path(args.output_key_prefix), password, force=args.force)
    print(f"Private key written to {paths.private}", file=sys.stderr)
    print(f"Public key written to {paths.public}", file=sys.stderr)
    return 0
