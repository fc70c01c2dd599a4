"""A cold ``giropops sbom archive://...`` imports what it uses: no dataclasses (``inspect``, ``ast``...),
no ``typing`` (``giropops.runtime_typing`` stands in for it), no ``pathlib`` (with the ``urllib.parse`` and
``ipaddress`` it imports: paths are strings on this path), no ``threading`` (``_thread`` runs the layer
threads), no ``packageurl``, and no cataloger whose files the image does not have; and it leaves the
collection Python runs at exit nothing to walk (speed shows in bench/sbom_vs_trivy.py; this is the
behaviour behind it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.imports import MODULES_WRAPPER
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

NOT_ON_THE_COLD_PATH = {"dataclasses", "inspect", "ast", "dis", "tokenize", "packageurl", "tarfile",
                        "giropops.oci.copypool", "typing", "contextlib", "pathlib", "urllib.parse", "ipaddress",
                        "threading"}


def cold_run(tmp_path: Path, entries: list[Entry]) -> tuple[set[str], dict[str, object]]:
    tar = write_docker_archive(tmp_path / "image.tar", [layer_from_entries(entries)])
    out, modules = tmp_path / "sbom.json", tmp_path / "modules.json"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(modules), "sbom", f"archive://{tar}", "-f",
                           "cyclonedx-json", "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(modules.read_text())["modules"]), json.loads(out.read_text())


def test_a_cold_dpkg_image_imports_no_dataclasses_nor_packageurl(tmp_path: Path) -> None:
    status = (b"Package: alpha\nStatus: install ok installed\nVersion: 1:1.0-2\nArchitecture: amd64\n"
              b"Source: alpha-src (1.0)\n\n")
    modules, doc = cold_run(tmp_path, [Entry("var/lib/dpkg/status", status)])
    assert "giropops.sbom.catalogers.dpkg" in modules  # the run really cataloged
    assert sorted(NOT_ON_THE_COLD_PATH & modules) == []
    # no file of theirs in this image: their modules are not imported
    for module in ("apk", "python", "npm", "ruby", "dotnet", "php"):
        assert f"giropops.sbom.catalogers.{module}" not in modules
    (component,) = doc["components"]
    assert component["purl"] == "pkg:deb/debian/alpha@1:1.0-2?arch=amd64&upstream=alpha-src%401.0"


def test_a_cataloger_is_imported_and_run_when_its_files_are_there(tmp_path: Path) -> None:
    installed = b"P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\n"
    modules, doc = cold_run(tmp_path, [Entry("lib/apk/db/installed", installed)])
    assert "giropops.sbom.catalogers.apk" in modules
    assert sorted(NOT_ON_THE_COLD_PATH & modules) == []
    for module in ("dpkg", "rpm", "golang", "rust", "java", "elf"):  # no database, executable or jar of theirs
        assert f"giropops.sbom.catalogers.{module}" not in modules
    assert [c["purl"] for c in doc["components"]] == ["pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"]


def test_the_readers_of_executables_jars_and_rpm_databases_are_imported_for_their_files(tmp_path: Path) -> None:
    installed = b"P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\n"
    executable = b"\x7fELF" + b"\x00" * 60  # not a well-formed one: the ELF reader says so
    modules, doc = cold_run(tmp_path, [Entry("lib/apk/db/installed", installed),
                                       Entry("usr/bin/tool", executable, mode=0o755),
                                       Entry("opt/app/lib.jar", b"not a zip"),
                                       Entry("var/lib/rpm/Packages", b"not a database")])
    for module in ("apk", "elf", "golang", "rust", "java", "rpm"):
        assert f"giropops.sbom.catalogers.{module}" in modules
    assert [c["purl"] for c in doc["components"]] == ["pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"]


# After the entry point of 'giropops sbom' returned: how many objects the collection at exit would walk.
TRACKED_WRAPPER = """
import gc, json, sys
out = sys.argv.pop(1)
sys.argv[0] = "giropops"
from giropops.cli.main import entry
try:
    entry()
except SystemExit as exc:
    code = exc.code
tracked = len(gc.get_objects())
with open(out, "w") as f:
    json.dump({"code": code, "tracked": tracked, "frozen": gc.get_freeze_count()}, f)
"""


def test_a_cold_sbom_leaves_the_collection_at_exit_nothing_to_walk(tmp_path: Path) -> None:
    status = b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    tar = write_docker_archive(tmp_path / "image.tar", [layer_from_entries([Entry("var/lib/dpkg/status", status)])])
    out, result = tmp_path / "sbom.json", tmp_path / "result.json"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", TRACKED_WRAPPER, str(result), "sbom", f"archive://{tar}", "-f",
                           "cyclonedx-json", "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(result.read_text())
    assert doc["code"] == 0 and json.loads(out.read_text())["components"][0]["name"] == "alpha"
    # everything the run made is frozen (thousands of objects); what is still tracked is the
    # handful the wrapper itself made since
    assert doc["frozen"] > 5_000 and doc["tracked"] < 100
