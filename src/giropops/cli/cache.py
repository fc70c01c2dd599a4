"""``giropops cache df`` / ``giropops cache prune [--sboms]``: the cache directory's use, and emptying it."""

from __future__ import annotations

import argparse
from typing import Any

from giropops.cli import exitcodes
from giropops.cli._groups import add_group


def register(sub: Any) -> None:
    csub = add_group(sub, "cache", "show or prune giropops's cache (SBOM layer records, build blobs, profiles)",
                     "cache_command", "what to do with the cache")
    p_df = csub.add_parser("df", help="disk use of each cache area")
    p_df.set_defaults(func=run_df)
    p_prune = csub.add_parser("prune", help="remove cached SBOM layer records, build blobs, image profiles and "
                                            "pushed-blob records (never the vulnerability database)")
    p_prune.add_argument("--sboms", action="store_true",
                         help="remove only the SBOM caches (per-layer records, file proofs, whole results, SPDX keys)")
    p_prune.set_defaults(func=run_prune)


def run_df(args: argparse.Namespace) -> int:
    from giropops import cachectl, units
    from giropops.sbom.cache import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, max_bytes_from_env

    areas = cachectl.usage()
    width = max(len(a.name) for a in areas)
    print(f"{'AREA':<{width}}  {'FILES':>7}  {'SIZE':>10}  PATH")
    for a in areas:
        print(f"{a.name:<{width}}  {a.files:>7}  {units.human_size(a.size):>10}  {a.path}")
    print(f"total: {units.human_size(sum(a.size for a in areas))}")
    bound = max_bytes_from_env()
    how = f"${MAX_BYTES_ENV}" if bound != DEFAULT_MAX_BYTES else "default"
    print(f"sbom-layers bound: {units.human_size(bound)} ({how}); least recently used records go first")
    return exitcodes.OK


def run_prune(args: argparse.Namespace) -> int:
    from giropops import cachectl, units

    freed = cachectl.prune(areas=cachectl.SBOM_AREAS if args.sboms else cachectl.PRUNABLE)
    for name, size in freed.items():
        print(f"{name}: {units.human_size(size)} freed")
    print(f"total: {units.human_size(sum(freed.values()))} freed")
    return exitcodes.OK
