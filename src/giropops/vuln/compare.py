"""``compare IMAGE --to OTHER``: what changed between two scanned images.

IMAGE is the new one and OTHER the baseline, as in ``docker scout compare``:
a vulnerability is *introduced* when IMAGE has it and OTHER does not (same id,
same package name) and *fixed* the other way round.  "Vulnerabilities
increased" means IMAGE has more findings than OTHER at some severity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from giropops.sbom.model import SBOM
from giropops.vuln.model import SEVERITIES, Finding
from giropops.vuln.report.view import ReportView

if TYPE_CHECKING:
    from giropops.vuln.scan import ImageFacts


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
    env: tuple[tuple[str, str | None, str | None], ...] | None  # (name, old, new) when both sides are images
    labels: tuple[tuple[str, str | None, str | None], ...] | None

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        return self.image.counts(), self.other.counts()

    @property
    def vulnerabilities_increased(self) -> bool:
        new, old = self.counts()
        return any(new[s] > old[s] for s in SEVERITIES)


def _diff(old: Mapping[str, str] | None, new: Mapping[str, str] | None,
          ) -> tuple[tuple[str, str | None, str | None], ...] | None:
    if old is None or new is None:
        return None
    return tuple((k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))


def compare(image: ReportView, other: ReportView, image_facts: ImageFacts | None = None,
            other_facts: ImageFacts | None = None) -> Comparison:
    """Compare two scanned images; env and label changes need the facts of both (None for SBOM inputs)."""
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
        env=_diff(other_facts.env if other_facts else None, image_facts.env if image_facts else None),
        labels=_diff(other_facts.labels if other_facts else None, image_facts.labels if image_facts else None),
    )
