"""Issue 19: ``giropops cves archive://FILE`` run again on the unchanged file scans the inventory stored by
the first run (``vuln.scan.stored_sbom_for``: the ``giropops sbom -f json`` document of ``sbom.results``)
instead of opening the archive; its report, stderr and exit code are the cold run's, and a changed archive
is read again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from giropops.sbom import results
from tests.support.images import tar_of
from tests.support.imports import MODULES_WRAPPER

OS_RELEASE = 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u1

Package: libexpat1
Status: install ok installed
Architecture: amd64
Source: expat
Version: 2.5.0-1

"""
FLASK_METADATA = "usr/lib/python3/dist-packages/Flask-2.2.0.dist-info/METADATA"
METADATA = "Metadata-Version: 2.1\nName: Flask\nVersion: 2.2.0\n"


def write_image(path: Path, status: str) -> Path:
    from giropops.oci import mutate
    from giropops.oci.empty import empty_image
    from giropops.oci.transport import write_image as write

    img = mutate.append_layers(empty_image(), [
        mutate.layer_from_tar(tar_of({"etc/os-release": OS_RELEASE.encode(), "var/lib/dpkg/status": status.encode()})),
        mutate.layer_from_tar(tar_of({FLASK_METADATA: METADATA.encode()})),
    ])
    write(img, f"archive://{path}:warm:1")
    return path


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[bytes], modules: set[str], report: bytes) -> None:
        self.proc, self.modules, self.report = proc, modules, report

    @property
    def stored(self) -> bool:
        """Scanned from a stored inventory: neither the catalogers nor the transports were imported."""
        return "giropops.sbom.generate" not in self.modules and "giropops.oci.transport" not in self.modules


def cves(tar: Path, cache: Path, db: Path, *args: str) -> Run:
    out, report = cache.parent / "modules.json", cache.parent / "report.out"
    report.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(out), "cves", f"archive://{tar}", "--db",
                           str(db), "--skip-db-update", "-o", str(report), *args],
                          env={**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}, capture_output=True, timeout=300)
    doc = json.loads(out.read_text())
    assert (doc["code"] or 0) == proc.returncode
    return Run(proc, set(doc["modules"]), report.read_bytes() if report.exists() else b"")


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("warm")
    write_image(work / "a.tar", STATUS)
    write_image(work / "b.tar", STATUS)
    time.sleep(results.SETTLE_SECONDS + 0.2)
    return work


@pytest.mark.parametrize("fmt", ["json", "text", "sarif"])
def test_a_warm_scan_reports_what_the_cold_one_did(settled: Path, full_db: Path, tmp_path: Path, fmt: str) -> None:
    cache = tmp_path / "cache"
    cold = cves(settled / "a.tar", cache, full_db, "--format", fmt, "--exit-code")
    assert not cold.stored and cold.proc.returncode == 2  # findings, with --exit-code
    warm = cves(settled / "a.tar", cache, full_db, "--format", fmt, "--exit-code")
    assert warm.stored
    assert (warm.proc.returncode, warm.proc.stdout, warm.proc.stderr) == (2, cold.proc.stdout, cold.proc.stderr)
    assert warm.report == cold.report and b"CVE-" in warm.report
    # the base split and locations still open the image when asked, and agree with a cold run's
    located = cves(settled / "a.tar", cache, full_db, "--format", fmt, "--locations")
    fresh = cves(settled / "a.tar", tmp_path / "fresh", full_db, "--format", fmt, "--locations")
    assert located.report == fresh.report and located.proc.stderr == fresh.proc.stderr


def test_the_inventory_is_the_one_giropops_sbom_stores(settled: Path, full_db: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = cves(settled / "b.tar", cache, full_db, "--format", "json")
    [entry] = list((cache / results.AREA).iterdir())  # one stored inventory, the 'sbom -f json' document
    proc = subprocess.run([sys.executable, "-m", "giropops", "sbom", f"archive://{settled / 'b.tar'}", "-f", "json",
                           "--no-cache"], env={**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "other")},
                          capture_output=True, check=True)
    assert entry.read_bytes().endswith(proc.stdout)
    assert json.loads(cold.report)["packages"] == 3


def test_a_changed_archive_is_scanned_again(settled: Path, full_db: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tar = write_image(tmp_path / "image.tar", STATUS)
    time.sleep(results.SETTLE_SECONDS + 0.2)
    cold = cves(tar, cache, full_db, "--format", "json")
    assert cves(tar, cache, full_db, "--format", "json").stored
    write_image(tmp_path / "new.tar", STATUS.replace("Version: 2.5.0-1", "Version: 9:9.9-1"))  # expat: fixed
    os.replace(tmp_path / "new.tar", tar)
    run = cves(tar, cache, full_db, "--format", "json")
    assert not run.stored and run.proc.returncode == 0
    fresh = cves(tar, tmp_path / "fresh", full_db, "--format", "json")
    assert run.report == fresh.report and run.report != cold.report

    def expat(report: bytes) -> set[tuple[str, str]]:
        return {(f["package"]["version"], f["vulnerability"]["id"]) for f in json.loads(report)["findings"]
                if f["package"]["name"] == "libexpat1"}

    before, after = expat(cold.report), expat(run.report)
    assert {v for v, _ in before} == {"2.5.0-1"} and {v for v, _ in after} <= {"9:9.9-1"}
    assert len(after) < len(before)  # the advisories fixed below 9:9.9-1 are gone


@pytest.mark.parametrize("enabled", [True, False])
def test_a_scan_pauses_the_cyclic_collector_and_restores_it(full_db: Path, enabled: bool) -> None:
    import gc

    from giropops.sbom.model import SBOM, Distro, Package, Subject
    from giropops.vuln.db.store import VulnDB
    from giropops.vuln.match import scan

    packages = tuple(Package(name="libexpat1", version=f"2.5.0-{i}", type="deb", source_name="expat",
                             purl=f"pkg:deb/debian/libexpat1@2.5.0-{i}?upstream=expat") for i in range(1, 400))
    sbom = SBOM(Subject("many"), Distro("debian", "12"), packages)
    passes: list[str] = []

    def note(phase: str, info: dict[str, int]) -> None:
        passes.append(phase)

    was = gc.isenabled()
    threshold = gc.get_threshold()
    with VulnDB(full_db) as db:
        gc.collect()
        gc.callbacks.append(note)
        try:
            gc.set_threshold(10)  # a collection every few allocations, were it running
            (gc.enable if enabled else gc.disable)()
            result = scan(sbom, db)
            after = gc.isenabled()
        finally:
            gc.callbacks.remove(note)
            gc.set_threshold(*threshold)
            (gc.enable if was else gc.disable)()
    assert after is enabled
    assert len(result.findings) > 399 and passes == []
