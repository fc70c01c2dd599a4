"""``compare IMAGE --to OTHER``: what changed between two scanned images.

IMAGE is the new one and OTHER the baseline, as in ``docker scout compare``:
a vulnerability is *introduced* when IMAGE has it and OTHER does not (same id,
same package name) and *fixed* the other way round.  "Vulnerabilities
increased" means IMAGE has more findings than OTHER at some severity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from giropops.sbom.model import SBOM
from giropops.vuln.model import SEVERITIES, Finding
from giropops.vuln.report.view import ReportView


@dataclass(frozen=True)
class PackageChange:
    type: str
    name: str
    old: tuple[str, ...]  # versions in OTHER
    new: tuple[str, ...]  # versions in IMAGE

    @property
    def status(self) -> str:
        if not self.old:
            return "added"
        if not self.new:
            return "removed"
        return "unchanged" if self.old == self.new else "changed"


@dataclass(frozen=True)
class Comparison:
    image: ReportView
    other: ReportView
    packages: tuple[PackageChange, ...]
    introduced: tuple[Finding, ...]
    fixed: tuple[Finding, ...]
    env: tuple[tuple[str, str | None, str | None], ...]  # (name, old, new) for differing variables
    labels: tuple[tuple[str, str | None, str | None], ...]

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        return self.image.counts(), self.other.counts()

    @property
    def vulnerabilities_increased(self) -> bool:
        new, old = self.counts()
        return any(new[s] > old[s] for s in SEVERITIES)


def _config(sbom: SBOM) -> Mapping[str, Any]:
    cfg = sbom.extra.get("config")
    if isinstance(cfg, Mapping):
        inner = cfg.get("config")
        return inner if isinstance(inner, Mapping) else cfg
    return {}


def image_env(sbom: SBOM) -> dict[str, str]:
    env = _config(sbom).get("Env") or []
    out: dict[str, str] = {}
    for item in env if isinstance(env, list) else []:
        if isinstance(item, str):
            k, _, v = item.partition("=")
            out[k] = v
    return out


def image_labels(sbom: SBOM) -> dict[str, str]:
    labels = _config(sbom).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def _diff(old: dict[str, str], new: dict[str, str]) -> tuple[tuple[str, str | None, str | None], ...]:
    return tuple((k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))


def compare(image: ReportView, other: ReportView) -> Comparison:
    def versions(sbom: SBOM) -> dict[tuple[str, str], tuple[str, ...]]:
        out: dict[tuple[str, str], set[str]] = {}
        for p in sbom.packages:
            out.setdefault((p.type, p.name), set()).add(p.version)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    new_v, old_v = versions(image.sbom), versions(other.sbom)
    changes = tuple(PackageChange(t, n, old_v.get((t, n), ()), new_v.get((t, n), ()))
                    for t, n in sorted(new_v.keys() | old_v.keys()))

    def keys(view: ReportView) -> dict[tuple[str, str], Finding]:
        return {(f.vuln_id, f.package.name): f for f in view.findings}

    new_f, old_f = keys(image), keys(other)
    introduced = tuple(f for k, f in new_f.items() if k not in old_f)
    fixed = tuple(f for k, f in old_f.items() if k not in new_f)
    return Comparison(
        image=image, other=other, packages=changes, introduced=introduced, fixed=fixed,
        env=_diff(image_env(other.sbom), image_env(image.sbom)),
        labels=_diff(image_labels(other.sbom), image_labels(image.sbom)),
    )
