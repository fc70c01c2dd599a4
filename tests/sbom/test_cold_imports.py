"""A cold ``giropops sbom archive://...`` imports what it uses: no dataclasses (``inspect``, ``ast``...),
no ``packageurl``, and no cataloger whose files the image does not have (speed shows in
bench/sbom_vs_trivy.py; this is the behaviour behind it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.imports import MODULES_WRAPPER
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

NOT_ON_THE_COLD_PATH = {"dataclasses", "inspect", "ast", "dis", "tokenize", "packageurl"}


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
    (component,) = doc["components"]
    assert component["purl"] == "pkg:deb/debian/alpha@1:1.0-2?arch=amd64&upstream=alpha-src%401.0"
