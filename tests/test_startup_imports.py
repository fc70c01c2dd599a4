"""A command imports what it uses: short commands and an archive SBOM leave the HTTP stack, the
crypto libraries and YAML alone (speed shows in bench/startup.py; this is the behaviour behind it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import MODULES_WRAPPER
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

HEAVY = ("requests", "urllib3", "cryptography", "yaml", "nacl", "bcrypt", "license_expression", "sqlite3",
         "zipfile", "http.client", "ssl", "email")



def imported(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(out), *args], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["code"] in (0, None), proc.stderr
    return set(doc["modules"])


@pytest.mark.parametrize("args", [("--version",), ("sbom", "--help"), ("version",)])
def test_short_commands_import_no_network_crypto_or_yaml(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = imported(tmp_path, *args)
    assert "giropops.cli.main" in modules  # the wrapper really ran the command
    assert sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY) == []


def test_version_builds_no_command_parser(tmp_path: Path) -> None:
    modules = imported(tmp_path, "--version")
    assert [m for m in modules if m.startswith("giropops.cli.") and m not in {
        "giropops.cli.main", "giropops.cli.exitcodes", "giropops.cli._registry"}] == []
    assert "argparse" not in modules  # no parser is built, nor the parser class defined


def test_sbom_help_imports_neither_the_catalogers_nor_dataclasses(tmp_path: Path) -> None:
    modules = imported(tmp_path, "sbom", "--help")
    assert "giropops.cli.sbom" in modules
    unwanted = {"dataclasses", "giropops.sbom.generate", "giropops.sbom.formats", "giropops.sbom.model",
                "giropops.oci.transport", "giropops.oci.model"}
    assert sorted(unwanted & modules) == []


def test_an_archive_sbom_imports_no_network_crypto_or_yaml(tmp_path: Path) -> None:
    status = b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    tar = write_docker_archive(tmp_path / "image.tar", [layer_from_entries([Entry("var/lib/dpkg/status", status)])])
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    for _ in ("cold", "warm"):
        modules = imported(tmp_path, "sbom", f"archive://{tar}", "-f", "cyclonedx-json", "-o",
                           str(tmp_path / "out.json"), env=env)
        assert "giropops.cli.sbom" in modules  # (a warm run may be served whole: giropops.sbom.results)
        assert sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY) == []
        assert "argparse" not in modules  # a plain command line: cli.sbom.parse_plain, no parser built
    assert json.loads((tmp_path / "out.json").read_text())["components"][0]["name"] == "alpha"


def test_a_command_parser_is_built_without_asking_the_terminal_its_width(tmp_path: Path) -> None:
    # argparse's formatters made while adding arguments ask shutil for the terminal width unless given one
    modules = imported(tmp_path, "version")
    assert "argparse" in modules and "giropops.cli.version" in modules  # a command parser was built
    assert "shutil" not in modules


@pytest.mark.parametrize("columns", ["60", "200"])
def test_help_still_follows_the_terminal_width(columns: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "giropops", "copy", "--help"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": columns})
    assert proc.returncode == 0, proc.stderr
    longest = max(len(line) for line in proc.stdout.splitlines())
    # argparse wraps at COLUMNS - 2; the --chunk-size help is one line only on the wide terminal
    assert longest <= int(columns) - 2
    assert (longest > 100) == (columns == "200")
