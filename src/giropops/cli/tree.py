"""``giropops tree``: what is attached to an image (signatures, attestations, SBOMs, referrers)."""

from __future__ import annotations

import argparse

from giropops.cli._signing import add_target, open_store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tree", help="show the signatures, attestations and SBOMs attached to an image")
    add_target(p)
    p.set_defaults(func=run)


_TITLES = {
    "signature": "🔐 Signatures for an image tag",
    "attestation": "💾 Attestations for an image tag",
    "sbom": "📦 SBOMs for an image tag",
    "referrer": "🔗 Referrers (OCI 1.1 / sigstore bundles)",
}


def run(args: argparse.Namespace) -> int:
    from giropops.sign.image import tree

    subject, entries = tree(open_store(args))
    print(f"📦 Supply Chain Security Related artifacts for an image: {subject.display} ({subject.digest})")
    if not entries:
        print("No Supply Chain Security Related Artifacts found for image")
        return 0
    for kind, title in _TITLES.items():
        mine = [e for e in entries if e.kind == kind]
        if not mine:
            continue
        print(f"└── {title}: {mine[0].where if kind != 'referrer' else subject.digest}")
        for i, e in enumerate(mine):
            branch = "└──" if i == len(mine) - 1 else "├──"
            extra = f" {e.detail}" if e.detail else ""
            print(f"   {branch} 🍒 {e.digest} {e.media_type}{extra}")
    return 0
