"""``--format list``: one package per line, for people."""

from __future__ import annotations

from giropops.sbom.model import SBOM


def _short(layer: str | None) -> str:
    if not layer:
        return "-"
    return layer.split(":", 1)[-1][:12]


def encode(sbom: SBOM) -> bytes:
    s = sbom.sorted()
    rows = [("NAME", "VERSION", "TYPE", "LAYER")]
    rows += [(p.name, p.version, p.type, _short(p.layer)) for p in s.packages]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    head = f"{s.subject.name}"
    if s.subject.digest:
        head += f"  {s.subject.digest}"
    lines.append(head)
    if s.distro is not None:
        lines.append(f"distro: {s.distro.pretty_name or s.distro.id} ({s.distro.id} {s.distro.version_id})")
    else:
        lines.append("distro: none")
    lines.append(f"{len(s.packages)} packages, {len(s.unknowns)} unknown files")
    lines.append("")
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for u in s.unknowns:
        lines.append(f"unknown: {u.location.path} ({u.cataloger}): {u.error}")
    return ("\n".join(lines) + "\n").encode("utf-8")
