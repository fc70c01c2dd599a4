"""rpm databases written by the real ``rpm`` tool (Debian's rpm package, SQLite backend) from packages
built here by ``rpmbuild``, read back and compared with ``rpm -qa`` and with Trivy."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from giropops.sbom.catalogers.rpm import NAME as RPM
from giropops.sbom.model import Distro
from tests.sbom.conftest import BuiltImage
from tests.sbom.ecosys_support import trivy_inventory
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

SPECS = {
    "hello": ("1.2.3", "4.el9", "2", "MIT AND BSD-3-Clause", "noarch"),
    "openssl-libs": ("3.0.7", "24.el9", "1", "Apache-2.0", "x86_64"),
    "bash": ("5.1.8", "6.el9_1", None, "GPL-3.0-or-later", "x86_64"),
}
OS_RELEASE = (
    b'NAME="AlmaLinux"\nVERSION="9.3 (Shamrock Pampas Cat)"\nID="almalinux"\n'
    b'ID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n'
)


def _rpm() -> str:
    path = shutil.which("rpm")
    assert path, "rpm is needed (Debian package rpm, installed by scripts/test)"
    return path


@pytest.fixture(scope="session")
def rpm_db(work: Path) -> Path:
    return im.rpm_database(work, SPECS, _rpm())


def rpm_qa(db: Path) -> set[tuple[str, str, str]]:
    fmt = "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"
    out = subprocess.run([_rpm(), "--dbpath", str(db), "-qa", "--qf", fmt], check=True, capture_output=True, text=True)
    return {tuple(line.split("\t")) for line in out.stdout.splitlines()}  # type: ignore[misc]


@pytest.fixture(scope="session")
def rpm_image(work: Path, rpm_db: Path) -> BuiltImage:
    layer = layer_from_entries(
        [
            Entry("etc/os-release", data=OS_RELEASE),
            Entry("etc/almalinux-release", data=b"AlmaLinux release 9.3 (Shamrock Pampas Cat)\n"),
            Entry("etc/redhat-release", symlink="almalinux-release"),
            Entry("var/lib/rpm/rpmdb.sqlite", data=(rpm_db / "rpmdb.sqlite").read_bytes()),
        ]
    )
    return im.image(work, "rpm", [layer])


def test_sqlite_rpmdb_equals_rpm_qa(rpm_image: BuiltImage, rpm_db: Path) -> None:
    sbom = sbom_for(f"archive://{rpm_image.tar}", use_cache=False)
    assert sbom.distro is not None and sbom.distro.osv_ecosystem == "AlmaLinux:9"
    mine = {(p.name, p.version, p.arch or "") for p in sbom.packages}
    assert mine == rpm_qa(rpm_db)
    assert ("hello", "2:1.2.3-4.el9", "noarch") in mine
    by = {p.name: p for p in sbom.packages}
    assert by["hello"].purl == "pkg:rpm/almalinux/hello@1.2.3-4.el9?arch=noarch&distro=almalinux-9.3&epoch=2"
    assert by["hello"].licenses == ("MIT AND BSD-3-Clause",)
    assert (by["bash"].source_name, by["bash"].source_version) == ("bash", "5.1.8-6.el9_1")
    assert by["bash"].locations[0].path == "/var/lib/rpm/rpmdb.sqlite"


def test_rpmdb_equals_trivy(rpm_image: BuiltImage, tmp_path: Path) -> None:
    sbom = sbom_for(f"archive://{rpm_image.tar}", use_cache=False)
    mine = {("rpm", p.name, p.version) for p in sbom.packages}
    theirs = trivy_inventory(rpm_image.tar, tmp_path / "trivy", {"rpm"}, versions_with_epoch=True)
    # (purl namespaces differ, names do not: docs/sbom-conventions.md)
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))


def test_distros_of_the_rpm_family() -> None:
    assert Distro("almalinux", "8.9").osv_ecosystem == "AlmaLinux:8"
    assert Distro("rocky", "9.2").osv_ecosystem == "Rocky Linux:9"
    assert Distro("fedora", "39").osv_ecosystem is None


def test_hostile_rpm_databases(work: Path, rpm_db: Path) -> None:
    good = (rpm_db / "rpmdb.sqlite").read_bytes()
    bad = work / "bad-rpmdb.sqlite"
    bad.write_bytes(good)
    con = sqlite3.connect(bad)
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (struct.pack(">II", 1000, 10**6) + b"\0" * 32,))
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (struct.pack(">IIIIiI", 1, 4, 1000, 6, 999, 1) + b"abcd",))
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (b"\0",))
    con.commit()
    con.close()
    layer = layer_from_entries(
        [
            Entry("var/lib/rpm/rpmdb.sqlite", data=bad.read_bytes()),
            Entry("usr/lib/sysimage/rpm/rpmdb.sqlite", data=b"SQLite format 3\0 but not really" * 10),
        ]
    )
    sbom = sbom_for(f"archive://{im.image(work, 'rpm-hostile', [layer]).tar}", use_cache=False)
    assert {p.name for p in sbom.packages} == set(SPECS)
    errors = sorted((u.location.path, u.error.split(":")[0]) for u in sbom.unknowns if u.cataloger == RPM)
    assert errors == [
        ("/usr/lib/sysimage/rpm/rpmdb.sqlite", "not an rpm SQLite database"),
        ("/var/lib/rpm/rpmdb.sqlite", "package header 4"),
        ("/var/lib/rpm/rpmdb.sqlite", "package header 5"),
        ("/var/lib/rpm/rpmdb.sqlite", "package header 6"),
    ]


def ndb_file(blobs: list[bytes]) -> bytes:
    """An NDB Packages.db laid out as rpm's lib/backend/ndb writes it: a header page of slots, then
    16-byte-aligned blobs (header ``BlbS``, index, checksum, length; data; padding)."""
    page = 4096
    slots = b""
    body = b""
    next_block = page // 16  # blobs start after the one slot page
    for index, blob in enumerate(blobs, start=1):
        record = struct.pack("<4sIII", b"BlbS", index, 0, len(blob)) + blob
        record += b"\0" * (-len(record) % 16 + 16)  # rpm keeps a trailer block; any padding will do here
        slots += struct.pack("<4sIII", b"Slot", index, next_block, len(record) // 16)
        body += record
        next_block += len(record) // 16
    header = struct.pack("<4sIII", b"RpmP", 0, 1, 1) + b"\0" * 16
    free = (page - len(header) - len(slots)) // 16
    slot_page = header + slots + struct.pack("<4sIII", b"Slot", 0, 0, 0) * free
    return slot_page + body


def test_ndb_database_with_the_real_headers(work: Path, rpm_db: Path) -> None:
    con = sqlite3.connect(f"file:{rpm_db / 'rpmdb.sqlite'}?mode=ro", uri=True)
    blobs = [bytes(r[0]) for r in con.execute("SELECT blob FROM Packages ORDER BY hnum")]
    con.close()
    corrupt = bytearray(ndb_file(blobs))
    corrupt[32:36] = b"Slop"
    layer = layer_from_entries(
        [
            Entry("etc/os-release", data=OS_RELEASE),
            Entry("usr/lib/sysimage/rpm/Packages.db", data=ndb_file(blobs)),
            Entry("var/lib/rpm/Packages.db", data=bytes(corrupt)),
        ]
    )
    sbom = sbom_for(f"archive://{im.image(work, 'rpm-ndb', [layer]).tar}", use_cache=False)
    assert {(p.name, p.version, p.arch or "") for p in sbom.packages} == rpm_qa(rpm_db)
    assert {p.locations[0].path for p in sbom.packages} == {"/usr/lib/sysimage/rpm/Packages.db"}
    assert [(u.location.path, u.error) for u in sbom.unknowns] == [
        ("/var/lib/rpm/Packages.db", "bad NDB slot at offset 32")
    ]


def bdb_packages(work: Path, blobs: list[bytes]) -> Path:
    """A Berkeley DB hash ``Packages`` written by Berkeley DB's own ``db_load`` (Debian's db5.3-util):
    key = the instance number (host order), value = the header blob, plus rpm's key-0 counter."""
    load = shutil.which("db5.3_load") or shutil.which("db_load")
    assert load, "db_load is needed (Debian package db5.3-util, installed by scripts/test)"
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END"]
    lines += [" " + struct.pack("<I", 0).hex(), " " + struct.pack("<I", len(blobs)).hex()]
    for n, blob in enumerate(blobs, start=1):
        lines += [" " + struct.pack("<I", n).hex(), " " + blob.hex()]
    lines.append("DATA=END")
    out = work / "bdb"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    (work / "bdb.dump").write_text("\n".join(lines) + "\n")
    subprocess.run([load, "-f", str(work / "bdb.dump"), str(out / "Packages")], check=True, capture_output=True)
    return out


def test_berkeley_db_written_by_db_load_and_read_by_rpm(work: Path, rpm_db: Path) -> None:
    con = sqlite3.connect(f"file:{rpm_db / 'rpmdb.sqlite'}?mode=ro", uri=True)
    blobs = [bytes(r[0]) for r in con.execute("SELECT blob FROM Packages ORDER BY hnum")]
    con.close()
    bdb = bdb_packages(work, blobs)
    # rpm's own read-only Berkeley DB backend reads it: this is an rpm database as EL8 has them
    r = subprocess.run(
        [_rpm(), "--define", "_db_backend bdb_ro", "--dbpath", str(bdb), "-qa", "--qf", "%{NAME}\\n"],
        capture_output=True,
        text=True,
    )
    assert set(r.stdout.split()) == set(SPECS), r.stderr[-500:]
    packages = (bdb / "Packages").read_bytes()
    truncated = packages[: len(packages) // 2]
    layer = layer_from_entries([Entry("etc/os-release", data=OS_RELEASE), Entry("var/lib/rpm/Packages", data=packages)])
    sbom = sbom_for(f"archive://{im.image(work, 'rpm-bdb', [layer]).tar}", use_cache=False)
    assert {(p.name, p.version, p.arch or "") for p in sbom.packages} == rpm_qa(rpm_db)
    assert sbom.unknowns == ()
    bad = layer_from_entries([Entry("var/lib/rpm/Packages", data=truncated)])
    sbom = sbom_for(f"archive://{im.image(work, 'rpm-bdb-bad', [bad]).tar}", use_cache=False)
    assert sbom.packages == ()
    assert [u.location.path for u in sbom.unknowns] == ["/var/lib/rpm/Packages"]
