"""The images the recommendation and policy tests push to a real registry, and an independent oracle.

Every base image is built here from hand-written package records — distroless-style
``/var/lib/dpkg/status.d/<pkg>`` paragraphs, ``*.dist-info/METADATA`` files, an
``os-release`` — claiming package versions chosen so that the real advisories in
``tests/data/vulndata`` affect them differently.  Random padding (which does not compress)
makes the sizes differ by known amounts.

``oracle_vulns`` counts the advisories affecting an image's packages from the OSV records
themselves, with python-debian's and packaging's version order: it shares no code with
``giropops.vuln``.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from debian.debian_support import Version as DebVersion
from packaging.version import InvalidVersion
from packaging.version import Version as PyVersion

from giropops.oci import mutate
from giropops.oci.empty import empty_image
from giropops.oci.image import Image
from giropops.oci.model import Platform
from tests.support.images import tar_of
from tests.support.paths import VULNDATA

OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    b'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
PATH_ENV = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
DAY = 86400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class Deb:
    name: str
    source: str
    version: str
    license: str = ""


@dataclass(frozen=True)
class Pip:
    name: str
    version: str


@dataclass(frozen=True)
class BaseSpec:
    debs: tuple[Deb, ...]
    pips: tuple[Pip, ...] = ()
    python_env: str | None = None  # ENV PYTHON_VERSION (as the official python images set it)
    padding: int = 0  # bytes of random data in a layer of its own
    created_days: int = 0  # days after T0
    seed: int = 0
    user: str = ""
    extra_env: tuple[str, ...] = field(default=())


# Versions picked so that each image is affected by a different set of real Debian 12 / PyPI advisories.
OLD_DEBS = (
    Deb("libssl3", "openssl", "3.0.9-1", "Apache-2.0"),
    Deb("zlib1g", "zlib", "1:1.2.13.dfsg-1", "Zlib"),
    Deb("libexpat1", "expat", "2.5.0-1", "MIT"),
    Deb("libsqlite3-0", "sqlite3", "3.40.1-2", "public-domain"),
)
NEW_DEBS = (
    Deb("libssl3", "openssl", "3.0.15-1~deb12u1", "Apache-2.0"),
    Deb("zlib1g", "zlib", "1:1.2.13.dfsg-1", "Zlib"),
    Deb("libexpat1", "expat", "2.5.0-1+deb12u1", "MIT"),
    Deb("libsqlite3-0", "sqlite3", "3.40.1-2+deb12u1", "public-domain"),
)
MB = 1_000_000

BASES: dict[str, BaseSpec] = {
    # python:3.11-slim as the app was built on it ...
    "3.11-slim@old": BaseSpec(OLD_DEBS, (Pip("pip", "23.0.1"), Pip("setuptools", "65.5.0")), "3.11.4",
                              padding=4 * MB, created_days=0, seed=1),
    # ... and as the tag points now (same OS and runtime line, patched packages)
    "3.11-slim": BaseSpec(NEW_DEBS, (Pip("pip", "24.0"), Pip("setuptools", "70.0.0")), "3.11.10",
                          padding=4 * MB, created_days=200, seed=2),
    # the full flavour: more packages, bigger, older packages: never better than the slim base
    "3.11": BaseSpec(
        (*OLD_DEBS, Deb("curl", "curl", "7.88.1-10", "curl"), Deb("libxml2", "libxml2", "2.9.14+dfsg-1.3", "MIT")),
        (Pip("pip", "23.0.1"), Pip("setuptools", "65.5.0")), "3.11.4", padding=9 * MB, created_days=1, seed=3,
    ),
    # a newer minor runtime version, slimmer still
    "3.12-slim": BaseSpec(NEW_DEBS, (Pip("pip", "24.2"), Pip("setuptools", "75.1.0")), "3.12.7",
                          padding=3 * MB, created_days=210, seed=4),
    # an older runtime line: must never be recommended
    "3.10-slim": BaseSpec(NEW_DEBS, (Pip("pip", "24.2"), Pip("setuptools", "75.1.0")), "3.10.15",
                          padding=1 * MB, created_days=205, seed=5),
    # distroless-style: Python from Debian's own python3.11 package, no pip, the smallest
    "distroless": BaseSpec(
        (*NEW_DEBS, Deb("libpython3.11-stdlib", "python3.11", "3.11.2-6", "PSF-2.0"),
         Deb("python3.11", "python3.11", "3.11.2-6", "PSF-2.0")),
        (), None, padding=2 * MB, created_days=190, seed=6, user="65532",
    ),
}
#: Tags pushed to the python repository: tag -> BASES key (3.12.7-slim and latest alias 3.12-slim).
PYTHON_TAGS = {
    "3.11": "3.11",
    "3.12-slim": "3.12-slim",
    "3.12.7-slim": "3.12-slim",
    "latest": "3.12-slim",
    "3.10-slim": "3.10-slim",
}


def status_paragraph(d: Deb) -> bytes:
    return (
        f"Package: {d.name}\nVersion: {d.version}\nArchitecture: amd64\nSource: {d.source}\n"
        f"Maintainer: Debian <debian@example.org>\nDescription: {d.name} (test record)\n"
    ).encode()


def copyright_file(license_name: str) -> bytes:
    return (
        # DEP-5 (machine-readable) layout; the Format: URL line is left out on purpose
        f"Upstream-Name: test\n\nFiles: *\nCopyright: test\nLicense: {license_name}\n"
    ).encode()


def deb_files(debs: Iterable[Deb]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for d in debs:
        files[f"var/lib/dpkg/status.d/{d.name}"] = status_paragraph(d)
        if d.license:
            files[f"usr/share/doc/{d.name}/copyright"] = copyright_file(d.license)
    return files


def build_base(spec: BaseSpec) -> Image:
    files = {"etc/os-release": OS_RELEASE, **deb_files(spec.debs)}
    for p in spec.pips:
        files[f"usr/local/lib/python3/site-packages/{p.name}-{p.version}.dist-info/METADATA"] = (
            f"Metadata-Version: 2.1\nName: {p.name}\nVersion: {p.version}\nLicense: MIT\n".encode()
        )
    layers = [mutate.layer_from_tar(tar_of(files))]
    if spec.padding:
        noise = random.Random(spec.seed).randbytes(spec.padding)
        layers.append(mutate.layer_from_tar(tar_of({"usr/lib/padding.bin": noise})))
    img: Image = mutate.append_layers(empty_image(Platform.host()), layers, created_by="test base")
    env = [PATH_ENV, *spec.extra_env]
    if spec.python_env:
        env.append(f"PYTHON_VERSION={spec.python_env}")
    img = mutate.with_config(img, env=env, user=spec.user, cmd=["python3"])
    return mutate.canonicalize(img, T0 + spec.created_days * DAY)


def build_app(base: Image, *, annotations: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
              user: str = "", extra_debs: Sequence[Deb] = (), created_days: int = 300) -> Image:
    files = {"app/main.py": b"print('giropops')\n", **deb_files(extra_debs)}
    img: Image = mutate.append_layers(base, [mutate.layer_from_tar(tar_of(files))], created_by="COPY app /app")
    img = mutate.with_config(img, user=user, cmd=["python3", "/app/main.py"])
    if labels:
        img = mutate.with_labels(img, labels)
    img = mutate.canonicalize(img, T0 + created_days * DAY)
    if annotations:
        img = mutate.with_annotations(img, annotations)
    return img


# -- advisories ----------------------------------------------------------------------------------

SOURCES = sorted({d.source for s in BASES.values() for d in s.debs} | {"readline"})
PYPI_NAMES = sorted({p.name for s in BASES.values() for p in s.pips})


def _records(path: Path) -> Iterable[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def select_advisories(out_dir: Path) -> list[Path]:
    """The Debian 12 and PyPI records naming our packages, as OSV JSON lines (what the test DB imports)."""
    wanted = {"Debian:12": set(SOURCES), "PyPI": set(PYPI_NAMES)}
    files = {"Debian:12": VULNDATA / "debian12.osv.jsonl.gz", "PyPI": VULNDATA / "pypi.osv.jsonl.gz"}
    out: list[Path] = []
    for eco, path in files.items():
        kept = []
        for rec in _records(path):
            affected = rec.get("affected") or []
            assert isinstance(affected, list)
            if any(a.get("package", {}).get("ecosystem") == eco and a.get("package", {}).get("name") in wanted[eco]
                   for a in affected):
                kept.append(json.dumps(rec))
        assert kept, f"no advisories for {eco}"
        dest = out_dir / f"{eco.replace(':', '')}.osv.jsonl.gz"
        with gzip.open(dest, "wt", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
        out.append(dest)
    return out


def _deb_affected(version: str, ranges: Sequence[Mapping[str, object]]) -> bool:
    v = DebVersion(version)
    for r in ranges:
        events = r.get("events") or []
        assert isinstance(events, list)
        intro: str | None = None
        for ev in events:
            if "introduced" in ev:
                intro = ev["introduced"]
            elif "fixed" in ev and intro is not None:
                lo_ok = intro == "0" or v >= DebVersion(intro)
                if lo_ok and v < DebVersion(ev["fixed"]):
                    return True
                intro = None
        if intro is not None and (intro == "0" or v >= DebVersion(intro)):
            return True
    return False


def _py_affected(version: str, affected: Mapping[str, object]) -> bool:
    v = PyVersion(version)
    versions = affected.get("versions") or []
    assert isinstance(versions, list)
    if version in versions:
        return True
    for r in affected.get("ranges") or []:  # type: ignore[attr-defined]
        if r.get("type") != "ECOSYSTEM":
            continue
        intro: PyVersion | None = None
        for ev in r.get("events") or []:
            try:
                if "introduced" in ev:
                    intro = PyVersion("0") if ev["introduced"] == "0" else PyVersion(ev["introduced"])
                elif "fixed" in ev and intro is not None:
                    if intro <= v < PyVersion(ev["fixed"]):
                        return True
                    intro = None
            except InvalidVersion:
                intro = None
        if intro is not None and v >= intro:
            return True
    return False


def _vuln_id(rec: Mapping[str, object]) -> str:
    rid = str(rec["id"])
    if rid.startswith("CVE-"):
        return rid
    cves = sorted({a for a in rec.get("aliases") or [] if str(a).startswith("CVE-")})  # type: ignore[attr-defined]
    return cves[0] if len(cves) == 1 else rid


def _withdrawn(rec: Mapping[str, object]) -> bool:
    dbs = rec.get("database_specific")
    return bool(rec.get("withdrawn")) or (isinstance(dbs, dict) and dbs.get("status") == "not_affected")


def oracle_vulns(
    spec: BaseSpec, advisory_files: Sequence[Path], extra_debs: Sequence[Deb] = ()
) -> set[tuple[str, str]]:
    """(vulnerability id, package name) for every advisory affecting the image's packages."""
    found: set[tuple[str, str]] = set()
    debs = [*spec.debs, *extra_debs]
    for path in advisory_files:
        for rec in _records(path):
            if _withdrawn(rec):
                continue
            for aff in rec.get("affected") or []:  # type: ignore[attr-defined]
                pkg = aff.get("package", {})
                if pkg.get("ecosystem") == "Debian:12":
                    for d in debs:
                        if d.source == pkg.get("name") and _deb_affected(d.version, aff.get("ranges") or []):
                            found.add((_vuln_id(rec), d.name))
                elif pkg.get("ecosystem") == "PyPI":
                    for p in spec.pips:
                        if p.name == pkg.get("name") and _py_affected(p.version, aff):
                            found.add((_vuln_id(rec), p.name))
    return found
