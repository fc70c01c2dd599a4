"""``FleetMatcher`` (each distinct package matched once across images) finds what ``scan`` finds per SBOM."""

from __future__ import annotations

from pathlib import Path

from giropops.fleet.matching import FleetMatcher
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan

DEBIAN = Distro("debian", "12")
OWNED_PATH = "usr/lib/python3/dist-packages/Flask-1.1.4.dist-info/METADATA"


def _sbom(name: str, extra: tuple[Package, ...] = ()) -> SBOM:
    packages = (
        Package("zlib1g", "1:1.2.13.dfsg-1", "deb", source_name="zlib", source_version="1:1.2.13.dfsg-1"),
        Package("python3-flask", "1.1.4-1", "deb", source_name="flask", files=("/" + OWNED_PATH,)),
        Package("flask", "1.1.4", "python", purl="pkg:pypi/flask@1.1.4", locations=(Location(OWNED_PATH),)),
        *extra,
    )
    return SBOM(Subject(name), DEBIAN, packages)


def _keys(findings: object) -> list[tuple[str, str, str, str | None, tuple[Location, ...]]]:
    return sorted((f.vuln_id, f.package.type, f.package.name, f.fixed_version, f.package.locations)
                  for f in findings)  # type: ignore[attr-defined]


def test_same_findings_as_scan_with_os_owned_packages(fleet_db: Path) -> None:
    pip_flask = Package("flask", "1.1.4", "python", purl="pkg:pypi/flask@1.1.4",
                        locations=(Location("usr/local/lib/python3.11/site-packages/flask-1.1.4.dist-info/METADATA"),))
    one = _sbom("a")  # flask only as the Debian package installed it: PyPI advisories do not apply
    two = _sbom("b", (pip_flask,))  # the same version installed by pip too: that one is matched
    with VulnDB(fleet_db) as db:
        matcher = FleetMatcher(db)
        for sbom in (one, two, one):
            assert _keys(matcher.sbom_findings(sbom)) == _keys(scan(sbom, db).findings)
        found = {(k[0], k[4]) for k in _keys(FleetMatcher(db).sbom_findings(two))}
    assert ("CVE-2099-1002", pip_flask.locations) in found
    assert ("CVE-2099-1002", (Location(OWNED_PATH),)) not in found
    assert any(k[0] == "CVE-2099-1001" for k in found)
