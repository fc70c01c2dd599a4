"""Proof: our findings equal an independent implementation's over the same advisories.

Package sets are realistic: the dpkg database of this Debian 12 machine (real
bookworm binary/source names and current versions), the same packages claiming
older source versions taken from the advisories' own fixed versions (so the
fixed-version paths and the exact boundaries are exercised), Python apps with
pinned old and new requirements, and apk package sets for Alpine, Wolfi and
Chainguard.  The expected findings come from ``oracle.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan
from tests.support.services import require_binary
from tests.vuln.oracle import Expected, Oracle


@pytest.fixture(scope="module")
def oracle(vulndata_files: list[Path]) -> Oracle:
    return Oracle(vulndata_files)


@pytest.fixture(scope="module")
def db(full_db: Path) -> VulnDB:
    return VulnDB(full_db)


def ours(sbom: SBOM, db: VulnDB) -> set[Expected]:
    result = scan(sbom, db)
    return {Expected(f.package.name, f.package.version, f.vuln_id, frozenset(f.advisory_ids), f.fixed_version)
            for f in result.findings}


def check(sbom: SBOM, db: VulnDB, oracle: Oracle) -> set[Expected]:
    got, want = ours(sbom, db), oracle.expect(sbom)
    assert got - want == set(), "false positives"
    assert want - got == set(), "misses"
    return got


def installed_debian_packages() -> list[Package]:
    dpkg_query = require_binary("dpkg-query")
    out = subprocess.run(
        [dpkg_query, "-W", "-f", "${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\n"],
        capture_output=True, text=True, check=True,
    ).stdout
    pkgs = []
    for line in out.splitlines():
        name, version, src, src_version, arch = line.split("\t")
        pkgs.append(Package(name, version, "deb", purl=f"pkg:deb/debian/{name}@{version}?arch={arch}",
                            source_name=src, source_version=src_version, arch=arch))
    assert len(pkgs) > 100
    return pkgs


DEBIAN = Distro("debian", "12", "Debian GNU/Linux 12 (bookworm)", version_codename="bookworm")


def test_debian_bookworm_current_versions(db: VulnDB, oracle: Oracle) -> None:
    sbom = SBOM(Subject("dpkg database of this bookworm machine"), DEBIAN, tuple(installed_debian_packages()))
    found = check(sbom, db, oracle)
    assert len(found) > 50  # current bookworm still carries unfixed (and some fixed) CVEs


def test_debian_bookworm_older_versions(db: VulnDB, oracle: Oracle) -> None:
    """The same packages claiming older source versions: just below and exactly at real fixed versions."""
    fixed_by_source: dict[str, list[str]] = {}
    for (eco, name), entries in oracle.index.items():
        if eco != "Debian:12":
            continue
        for _, aff in entries:
            for r in aff.get("ranges", []):
                for ev in r["events"]:
                    if "fixed" in ev:
                        fixed_by_source.setdefault(name, []).append(ev["fixed"])
    older: list[Package] = []
    for i, p in enumerate(installed_debian_packages()):
        fixes = sorted(set(fixed_by_source.get(p.source_name or p.name, [])))
        if not fixes:
            continue
        target = fixes[len(fixes) // 2]
        # alternate: "~" sorts before the fixed version (affected); the fixed version itself is not
        version = target + "~old" if i % 2 == 0 else target
        older.append(Package(p.name, version, "deb", source_name=p.source_name, source_version=version))
    assert len(older) > 30
    sbom = SBOM(Subject("bookworm, older"), DEBIAN, tuple(older))
    found = check(sbom, db, oracle)
    assert sum(1 for f in found if f.fixed) > 20  # the fixed-version path is exercised


PY_OLD = [("Flask", "0.12"), ("requests", "2.19.0"), ("Django", "2.2.0"), ("Jinja2", "2.10"), ("urllib3", "1.24.1"),
          ("PyYAML", "5.3"), ("Pillow", "8.0.0"), ("cryptography", "3.2"), ("Werkzeug", "0.15.0"),
          ("redis", "3.0.0"), ("gunicorn", "19.9.0"), ("prometheus_client", "0.7.0"), ("setuptools", "40.0"),
          ("pip", "9.0.1"), ("zope.interface", "4.0"), ("aiohttp", "3.7.0"), ("certifi", "2019.11.28"),
          ("idna", "2.8"), ("lxml", "4.6.0"), ("numpy", "1.16.0"), ("tornado", "6.0")]
PY_NEW = [("Flask", "3.1.0"), ("requests", "2.32.3"), ("Django", "5.1.6"), ("Jinja2", "3.1.5"), ("urllib3", "2.3.0"),
          ("PyYAML", "6.0.2"), ("Pillow", "11.1.0"), ("cryptography", "44.0.1"), ("Werkzeug", "3.1.3"),
          ("redis", "5.2.1"), ("gunicorn", "23.0.0"), ("prometheus-client", "0.21.1"), ("setuptools", "75.8.0"),
          ("pip", "25.0"), ("aiohttp", "3.11.12"), ("certifi", "2025.1.31"), ("idna", "3.10"), ("lxml", "5.3.1"),
          ("numpy", "2.2.3"), ("tornado", "6.4.2"), ("ascii2text", "1.0")]


@pytest.mark.parametrize("pins", [PY_OLD, PY_NEW], ids=["old-pins", "new-pins"])
def test_python_apps(db: VulnDB, oracle: Oracle, pins: list[tuple[str, str]]) -> None:
    pkgs = tuple(Package(n, v, "python", purl=f"pkg:pypi/{n.lower()}@{v}") for n, v in pins)
    found = check(SBOM(Subject("python app"), DEBIAN, pkgs), db, oracle)
    if pins is PY_OLD:
        assert len(found) > 100 and {"Flask", "Django", "PyYAML"} <= {f.package for f in found}
    else:
        assert any(f.vuln_id.startswith("MAL-") for f in found)  # ascii2text is a malicious package


ALPINE_319 = [("busybox", "1.36.1-r15", "busybox"), ("ssl_client", "1.36.1-r15", "busybox"),
              ("musl", "1.2.4_git20230717-r4", "musl"), ("libcrypto3", "3.1.4-r5", "openssl"),
              ("libssl3", "3.1.4-r5", "openssl"), ("zlib", "1.3.1-r0", "zlib"), ("apk-tools", "2.14.0-r5", "apk-tools"),
              ("ca-certificates-bundle", "20240226-r0", "ca-certificates"), ("expat", "2.6.0-r0", "expat"),
              ("sqlite-libs", "3.44.2-r0", "sqlite"), ("libcurl", "8.5.0-r0", "curl"), ("curl", "8.5.0-r0", "curl"),
              ("python3", "3.11.8-r0", "python3"), ("libxml2", "2.11.6-r0", "libxml2"),
              ("openssl", "3.1.0-r0", "openssl"), ("busybox-old", "1.30.0-r0", "busybox"),
              ("git", "2.43.0_rc1-r0", "git"), ("ncurses-libs", "6.4_p20231125-r0", "ncurses")]
WOLFI = [("glibc", "2.38-r10", "glibc"), ("libcrypto3", "3.2.0-r0", "openssl"), ("openssl", "3.2.0-r0", "openssl"),
         ("busybox", "1.36.1-r2", "busybox"), ("python-3.12", "3.12.1-r0", "python-3.12"),
         ("ca-certificates-bundle", "20230506-r0", "ca-certificates"), ("libexpat1", "2.5.0-r4", "expat"),
         ("zlib", "1.3-r0", "zlib"), ("curl", "8.4.0-r0", "curl"), ("libcurl-openssl4", "8.4.0-r0", "curl"),
         ("git", "2.42.0-r0", "git"), ("wolfi-baselayout", "20230201-r7", "wolfi-baselayout"),
         ("podman", "5.4.1-r1", "podman"), ("prometheus-2.53", "2.53.3-r0", "prometheus-2.53"),
         ("cilium-1.15", "1.15.0-r0", "cilium-1.15")]


@pytest.mark.parametrize(
    ("distro", "pkgs"),
    [(Distro("alpine", "3.19.1"), ALPINE_319), (Distro("alpine", "3.12.0"), ALPINE_319),
     (Distro("wolfi", "20230201"), WOLFI), (Distro("chainguard", "20230214"), WOLFI)],
    ids=["alpine-3.19", "alpine-3.12", "wolfi", "chainguard"],
)
def test_apk_distributions(db: VulnDB, oracle: Oracle, distro: Distro, pkgs: list[tuple[str, str, str]]) -> None:
    packages = tuple(Package(n, v, "apk", source_name=o) for n, v, o in pkgs)
    found = check(SBOM(Subject("apk image"), distro, packages), db, oracle)
    assert len(found) > 10
    assert any(f.fixed for f in found)
    if distro.id == "wolfi":
        assert any(f.fixed is None for f in found)  # wolfi-unresolved: "not fixed"


def test_every_match_says_why(db: VulnDB) -> None:
    sbom = SBOM(Subject("x"), Distro("alpine", "3.19.1"),
                (Package("libssl3", "3.1.4-r5", "apk", source_name="openssl"),))
    result = scan(sbom, db)
    assert result.findings
    for f in result.findings:
        for m in f.matches:
            assert m.matcher == "apk" and m.ecosystem == "Alpine:v3.19" and m.searched_name == "openssl"
            assert m.installed_version == "3.1.4-r5" and m.advisory_id.startswith("ALPINE-")
            assert m.affected_range.startswith("<") and m.fixed_version is not None


def test_not_affected_and_withdrawn_never_match(tmp_path: Path) -> None:
    import json

    from giropops.vuln.db.importer import import_paths

    records = [
        {"id": "NA-1", "modified": "2025-01-01T00:00:00Z",
         "affected": [{"package": {"ecosystem": "Wolfi", "name": "pkg"}}],
         "database_specific": {"status": "not_affected"}},
        {"id": "NA-2", "modified": "2025-01-01T00:00:00Z",
         "affected": [{"package": {"ecosystem": "Wolfi", "name": "pkg"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0"}]}]}]},
        {"id": "WD-1", "modified": "2025-01-01T00:00:00Z", "withdrawn": "2025-01-02T00:00:00Z",
         "affected": [{"package": {"ecosystem": "Wolfi", "name": "pkg"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"id": "YES-1", "modified": "2025-01-01T00:00:00Z",
         "affected": [{"package": {"ecosystem": "Wolfi", "name": "pkg"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"id": "LA-1", "modified": "2025-01-01T00:00:00Z",
         "affected": [{"package": {"ecosystem": "Wolfi", "name": "pkg"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0-r0"},
                                                                   {"last_affected": "1.2-r0"}]}]}]},
    ]
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_paths(tmp_path / "db.sqlite3", [src])
    with VulnDB(tmp_path / "db.sqlite3") as vdb:
        def ids(version: str) -> set[str]:
            sbom = SBOM(Subject("x"), Distro("wolfi"), (Package("pkg", version, "apk"),))
            return {f.vuln_id for f in scan(sbom, vdb).findings}

        assert ids("1.2-r0") == {"YES-1", "LA-1"}
        assert ids("1.2-r1") == {"YES-1"}
        assert ids("0.9-r0") == {"YES-1"}


def test_python_packages_installed_by_os_packages_are_not_matched_against_pypi(db: VulnDB, oracle: Oracle) -> None:
    from giropops.sbom.model import Location

    egg = "/usr/lib/python3/dist-packages/PyYAML-5.3.egg-info"
    deb = Package("python3-yaml", "5.3-1", "deb", source_name="pyyaml", source_version="5.3-1",
                  files=("/usr/lib/python3/dist-packages", egg, f"{egg}/PKG-INFO"))
    owned = Package("PyYAML", "5.3", "python", locations=(Location(f"{egg}/PKG-INFO"),))
    pip_installed = Package("PyYAML", "5.3", "python",
                            locations=(Location("/usr/local/lib/python3.11/site-packages/PyYAML-5.3.dist-info/METADATA"),))
    both = SBOM(Subject("x"), DEBIAN, (deb, owned))
    found = check(both, db, oracle)
    assert found and all(f.package == "python3-yaml" for f in found)  # Debian's pyyaml advisories only
    assert "installed by an OS package" in scan(both, db).notes[0]
    alone = check(SBOM(Subject("y"), DEBIAN, (deb, pip_installed)), db, oracle)
    assert any(f.package == "PyYAML" for f in alone)  # a pip-installed copy is matched against PyPI
