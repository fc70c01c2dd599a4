"""Ruby gemspecs from Debian's real ruby-* packages, a .NET ``*.deps.json`` and a Composer
``installed.json`` written here in the shape the dotnet and composer tools write, each compared with
Trivy on the same image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from tests.sbom.conftest import BuiltImage
from tests.sbom.ecosys_support import apt_download, name_of_purl, trivy_inventory, unpack_deb
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

RUBY_DEBS = ("ruby-rack", "ruby-concurrent", "ruby-i18n")
SPECS = "usr/share/rubygems-integration/all/specifications"

DEPS_JSON = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
    "targets": {".NETCoreApp,Version=v8.0": {}},
    "libraries": {
        "WebApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Newtonsoft.Json/13.0.1": {"type": "package", "serviceable": True, "sha512": "sha512-x"},
        "Serilog/3.1.1": {"type": "package", "serviceable": True, "sha512": "sha512-y"},
        "System.Runtime/4.3.0": {"type": "referenceassembly", "serviceable": False, "sha512": ""},
    },
}
INSTALLED = {
    "packages": [
        {"name": "monolog/monolog", "version": "3.5.0", "license": ["MIT"], "type": "library"},
        {"name": "psr/log", "version": "3.0.0", "license": ["MIT"], "type": "library"},
        {"name": "symfony/polyfill-mbstring", "version": "v1.28.0", "license": ["MIT"], "type": "library"},
    ],
    "dev": False,
    "dev-package-names": [],
}


@pytest.fixture(scope="session")
def ruby_root(work: Path) -> Path:
    root = work / "ruby-root"
    if not root.exists():
        for deb in apt_download(RUBY_DEBS, work / "ruby-debs").values():
            unpack_deb(deb, root)
    return root


@pytest.fixture(scope="session")
def polyglot_image(work: Path, ruby_root: Path) -> BuiltImage:
    base = im.layer_from_dir(ruby_root, work / "ruby.tar")
    apps = layer_from_entries(
        [
            Entry("app/WebApp.deps.json", data=json.dumps(DEPS_JSON).encode()),
            Entry("var/www/vendor/composer/installed.json", data=json.dumps(INSTALLED).encode()),
            Entry("old/vendor/composer/installed.json", data=json.dumps(INSTALLED["packages"][:1]).encode()),
        ]
    )
    return im.image(work, "polyglot", [base, apps])


def test_gems_equal_the_gemspec_file_names(polyglot_image: BuiltImage, ruby_root: Path) -> None:
    sbom = sbom_for(f"archive://{polyglot_image.tar}", use_cache=False)
    gems = {(p.name, p.version) for p in sbom.packages if p.type == "gem"}
    expected = {tuple(f.name[: -len(".gemspec")].rsplit("-", 1)) for f in (ruby_root / SPECS).iterdir()}
    assert gems == expected and len(gems) == 4
    for p in sbom.packages:
        assert name_of_purl(p.purl) == (p.type if p.type != "gem" else "gem", p.name, p.version)
    rack = next(p for p in sbom.packages if p.name == "rack")
    assert rack.licenses == ("MIT",) and rack.locations[0].path.startswith(f"/{SPECS}/rack-")


def test_nuget_and_composer(polyglot_image: BuiltImage) -> None:
    sbom = sbom_for(f"archive://{polyglot_image.tar}", use_cache=False)
    nuget = {(p.name, p.version, p.purl) for p in sbom.packages if p.type == "nuget"}
    assert nuget == {
        ("Newtonsoft.Json", "13.0.1", "pkg:nuget/Newtonsoft.Json@13.0.1"),
        ("Serilog", "3.1.1", "pkg:nuget/Serilog@3.1.1"),
    }
    composer = {(p.locations[0].path, p.name, p.version, p.purl) for p in sbom.packages if p.type == "composer"}
    assert composer == {
        ("/var/www/vendor/composer/installed.json", "monolog/monolog", "3.5.0", "pkg:composer/monolog/monolog@3.5.0"),
        ("/var/www/vendor/composer/installed.json", "psr/log", "3.0.0", "pkg:composer/psr/log@3.0.0"),
        (
            "/var/www/vendor/composer/installed.json",
            "symfony/polyfill-mbstring",
            "v1.28.0",
            "pkg:composer/symfony/polyfill-mbstring@v1.28.0",
        ),
        ("/old/vendor/composer/installed.json", "monolog/monolog", "3.5.0", "pkg:composer/monolog/monolog@3.5.0"),
    }


def test_equal_trivy(polyglot_image: BuiltImage, tmp_path: Path) -> None:
    sbom = sbom_for(f"archive://{polyglot_image.tar}", use_cache=False)
    types = {"gem", "nuget", "composer"}
    mine = {(p.type, p.name, p.version) for p in sbom.packages if p.type in types}
    theirs = trivy_inventory(polyglot_image.tar, tmp_path / "trivy", types)
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))


def test_hostile_files_are_unknowns(work: Path) -> None:
    layer = layer_from_entries(
        [
            Entry("a/x.deps.json", data=b"{" * 50000),
            Entry("b/y.deps.json", data=b'{"libraries": {"NoSlash": {"type": "package"}}}'),
            Entry("c/vendor/composer/installed.json", data=b'"just a string"'),
            Entry("d/specifications/evil.gemspec", data=b"system('rm -rf /')\n"),
        ]
    )
    sbom = sbom_for(f"archive://{im.image(work, 'poly-hostile', [layer]).tar}", use_cache=False)
    assert sbom.packages == ()
    assert {u.location.path for u in sbom.unknowns} == {
        "/a/x.deps.json",
        "/b/y.deps.json",
        "/c/vendor/composer/installed.json",
        "/d/specifications/evil.gemspec",
    }
