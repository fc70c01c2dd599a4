"""Catalogers against what the real tools say: dpkg-deb / dpkg-query for Debian packages, pip for wheels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

from debian.debian_support import Version as DebVersion

from giropops.sbom import generate_from_directory, sbom_for
from giropops.sbom.catalogers import default_catalogers, interest_for
from giropops.sbom.catalogers.apk import ApkCataloger
from giropops.sbom.catalogers.dpkg import DpkgCataloger
from giropops.sbom.catalogers.python import PythonCataloger
from giropops.sbom.distro import detect
from giropops.sbom.filesystem import Filesystem, read_layer
from tests.sbom.conftest import APK_PACKAGES, SITE, BuiltImage, apk_installed_db, pep503
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries


def squash(*layers: bytes) -> Filesystem:
    import io

    interest = interest_for(default_catalogers())
    return Filesystem([read_layer(io.BytesIO(b), f"sha256:{i:064d}", interest) for i, b in enumerate(layers)])


def _source_of(deb: Path) -> tuple[str, str]:
    """Source name and version as Debian policy §5.6.1 defines them, read with dpkg-deb."""
    name, version = im.deb_field(deb, "Package"), im.deb_field(deb, "Version")
    source = im.deb_field(deb, "Source")
    if not source:
        return name, version
    if "(" in source:
        src_name, _, rest = source.partition("(")
        return src_name.strip(), rest.rstrip(")").strip()
    return source.strip(), version


def test_distroless_status_d_matches_dpkg_deb(distroless_image: BuiltImage, debs: dict[str, Path]) -> None:
    sbom = sbom_for(f"archive://{distroless_image.tar}", use_cache=False)
    assert sbom.distro is not None and (sbom.distro.id, sbom.distro.version_id) == ("debian", "12")
    by_name = {p.name: p for p in sbom.packages}
    assert set(by_name) == set(debs)
    for name, deb in debs.items():
        p = by_name[name]
        assert p.type == "deb"
        assert p.version == im.deb_field(deb, "Version")
        assert p.arch == im.deb_field(deb, "Architecture")
        assert (p.source_name, p.source_version) == _source_of(deb), name
        assert p.locations[0].path == f"/var/lib/dpkg/status.d/{name}"
        assert p.layer == f"sha256:{_sha256(distroless_image.layers[0])}"
        assert p.files == ()  # distroless keeps no .list files
    # the cases the source fields exist for
    assert by_name["libgcc-s1"].source_name == "gcc-12"
    assert by_name["libssl3"].source_name == "openssl"
    zlib = by_name["zlib1g"]
    assert zlib.version.startswith("1:")
    # the epoch stays in the purl version, as syft writes it (Trivy moves it to an epoch= qualifier);
    # the purl's version is percent-encoded ('+' is %2B), so compare it decoded and parsed
    for name, deb in debs.items():
        p = by_name[name]
        assert p.purl is not None and p.purl.startswith("pkg:deb/debian/"), p.purl
        purl_name, _, purl_version = p.purl.removeprefix("pkg:deb/debian/").split("?", 1)[0].partition("@")
        assert unquote(purl_name) == name, p.purl
        assert DebVersion(unquote(purl_version)) == DebVersion(im.deb_field(deb, "Version")), p.purl
        assert "distro=debian-12" in p.purl and f"arch={im.deb_field(deb, 'Architecture')}" in p.purl


def _sha256(layer: Path | bytes) -> str:
    import hashlib

    return hashlib.sha256(layer if isinstance(layer, bytes) else layer.read_bytes()).hexdigest()


def test_declared_licenses_come_from_the_copyright_files(distroless_image: BuiltImage, work: Path) -> None:
    sbom = sbom_for(f"archive://{distroless_image.tar}", use_cache=False)
    for p in sbom.packages:
        text = (work / "distroless-root" / "usr/share/doc" / p.name / "copyright").read_text(errors="replace")
        first = next((line[8:].strip() for line in text.splitlines() if line.startswith("License:")), None)
        if first:
            assert first in p.licenses, p.name


def test_debootstrap_matches_dpkg_query(debootstrap_root: Path) -> None:
    sbom = generate_from_directory(debootstrap_root)
    admindir = str(debootstrap_root / "var/lib/dpkg")
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t"
         "${source:Package}\t${source:Version}\t${db:Status-Abbrev}\n"],
        check=True, capture_output=True, text=True,
    ).stdout
    want = {}
    for line in out.splitlines():
        name, version, arch, src, src_version, status = line.split("\t")
        if status.startswith("ii"):
            want[name] = (version, arch, src, src_version)
    got = {p.name: (p.version, p.arch, p.source_name, p.source_version) for p in sbom.packages}
    assert got == want
    # binNMUs (bash 5.2.15-2+b13 from source 5.2.15-2) are why the source version is kept apart
    assert any(v[3] != v[0] for v in want.values())
    bash = next(p for p in sbom.packages if p.name == "bash")
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-L", "bash"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert set(bash.files) == {f for f in listed if f and f != "/."}
    assert "/usr/bin/bash" in bash.files or "/bin/bash" in bash.files


def test_venv_packages_match_pip(venv_image: BuiltImage, work: Path) -> None:
    site = work / "venv-root" / SITE
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pip", "list", "--path", str(site), "--format", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    want = {(pep503(d["name"]), d["version"]) for d in listed}
    sbom = sbom_for(f"archive://{venv_image.tar}", use_cache=False)
    python = [p for p in sbom.packages if p.type == "python"]
    assert {(p.name, p.version) for p in python} == want
    markupsafe = next(p for p in python if p.name == "markupsafe")
    assert markupsafe.metadata["name"] == "MarkupSafe"
    assert markupsafe.purl == "pkg:pypi/markupsafe@2.1.5"
    assert f"/{SITE}/markupsafe/__init__.py" in markupsafe.files
    assert markupsafe.layer == f"sha256:{_sha256(venv_image.layers[1])}"
    deb_layer = f"sha256:{_sha256(venv_image.layers[0])}"
    assert all(p.layer == deb_layer for p in sbom.packages if p.type == "deb")
    six = next(p for p in python if p.name == "six")
    assert six.licenses == ("MIT",)


def test_whiteouts_delete_packages(whiteout_image: BuiltImage, venv_image: BuiltImage) -> None:
    before = sbom_for(f"archive://{venv_image.tar}", use_cache=False)
    after = sbom_for(f"archive://{whiteout_image.tar}", use_cache=False)
    names_before = {p.name for p in before.packages}
    names_after = {p.name for p in after.packages}
    assert {"zlib1g", "six", "attrs", "markupsafe"} <= names_before
    assert names_before - names_after == {"zlib1g", "six", "attrs", "packaging", "markupsafe", "typing-extensions"}
    idna = next(p for p in after.packages if p.name == "idna")
    # The venv layer's copy of idna was hidden by the opaque directory; the files you get come from the
    # top layer, so that is where we say idna is.  (Trivy says the venv layer: it attributes a package
    # to the first layer where the same name and version appeared, ignoring that it was deleted since.)
    assert idna.layer == f"sha256:{_sha256(whiteout_image.layers[2])}"


def test_apk_fields_and_purls() -> None:
    fs = squash(
        layer_from_entries(
            [
                Entry("etc/alpine-release", b"3.19.1\n"),
                Entry("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
                Entry("lib/apk/db/installed", apk_installed_db(APK_PACKAGES).encode()),
            ]
        )
    )
    distro = detect(fs)
    assert distro is not None and distro.osv_ecosystem == "Alpine:v3.19"
    result = ApkCataloger().catalog(fs, distro)
    assert not result.unknowns
    got = {p.name: p for p in result.packages}
    for name, version, origin, arch, lic, files in APK_PACKAGES:
        p = got[name]
        assert (p.version, p.source_name, p.arch, p.licenses) == (version, origin, arch, (lic,))
        assert p.files == tuple(f"/{f}" for f in files)
    assert got["libssl3"].purl == "pkg:apk/alpine/libssl3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"


def test_wolfi_and_chainguard_namespaces() -> None:
    for distro_id in ("wolfi", "chainguard"):
        fs = squash(
            layer_from_entries(
                [
                    Entry("etc/os-release", f'ID={distro_id}\nNAME="x"\nVERSION_ID=20230201\n'.encode()),
                    Entry("lib/apk/db/installed", b"P:glibc\nV:2.38-r1\nA:x86_64\no:glibc\nL:LGPL-2.1-or-later\n\n"),
                ]
            )
        )
        distro = detect(fs)
        assert distro is not None and distro.id == distro_id
        (pkg,) = ApkCataloger().catalog(fs, distro).packages
        assert pkg.purl.startswith(f"pkg:apk/{distro_id}/glibc@2.38-r1?arch=x86_64")


def test_scratch_image_has_no_distro_but_packages() -> None:
    meta = b"Metadata-Version: 2.1\nName: Static_Thing\nVersion: 1.0\n\nlong description\n"
    fs = squash(layer_from_entries([Entry("app/server", b"\x7fELF"), Entry("app/x.dist-info/METADATA", meta)]))
    assert detect(fs) is None
    (pkg,) = PythonCataloger().catalog(fs, None).packages
    assert (pkg.name, pkg.version, pkg.purl) == ("static-thing", "1.0", "pkg:pypi/static-thing@1.0")


def test_distro_debian_version_fallback_and_alpine_release() -> None:
    fs = squash(layer_from_entries([Entry("etc/debian_version", b"12.7\n")]))
    d = detect(fs)
    assert d is not None and (d.id, d.version_id, d.osv_ecosystem) == ("debian", "12", "Debian:12")
    fs = squash(layer_from_entries([Entry("etc/alpine-release", b"3.20.3\n")]))
    d = detect(fs)
    assert d is not None and (d.id, d.version_id) == ("alpine", "3.20.3")


def test_egg_info_forms() -> None:
    pkg_info = b"Metadata-Version: 1.1\nName: Old.Style_pkg\nVersion: 0.9\nLicense: BSD\n"
    fs = squash(
        layer_from_entries(
            [
                Entry("usr/lib/python3/dist-packages/old_style.egg-info/PKG-INFO", pkg_info),
                Entry("usr/lib/python3/dist-packages/distutils_thing-1.2.egg-info", pkg_info.replace(b"0.9", b"1.2")),
            ]
        )
    )
    got = {(p.name, p.version, p.licenses) for p in PythonCataloger().catalog(fs, None).packages}
    assert got == {("old-style-pkg", "0.9", ("BSD",)), ("old-style-pkg", "1.2", ("BSD",))}


def test_unparseable_files_become_unknowns_and_never_abort() -> None:
    status = (
        b"Package: good\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
        b"this line is not a field\nPackage: broken\n\n"
        b"Package: noversion\nStatus: install ok installed\n\n"
        b"Package: removed\nStatus: deinstall ok config-files\nVersion: 2\n\n"
    )
    fs = squash(
        layer_from_entries(
            [
                Entry("var/lib/dpkg/status", status),
                Entry("var/lib/dpkg/status.d/garbage", b"\x00\xff\xfe binary \x00"),
                Entry("lib/apk/db/installed", b"P:ok\nV:1\n\nnot apk\n\n"),
                Entry("site-packages/bad.dist-info/METADATA", b"Metadata-Version: 2.1\nSummary: no name\n"),
            ]
        )
    )
    dpkg = DpkgCataloger().catalog(fs, None)
    assert [p.name for p in dpkg.packages] == ["good"]
    assert {(u.location.path, u.cataloger) for u in dpkg.unknowns} == {
        ("/var/lib/dpkg/status", "dpkg"),
        ("/var/lib/dpkg/status.d/garbage", "dpkg"),
    }
    assert len([u for u in dpkg.unknowns if u.location.path == "/var/lib/dpkg/status"]) == 2
    apk = ApkCataloger().catalog(fs, None)
    assert [p.name for p in apk.packages] == ["ok"] and len(apk.unknowns) == 1
    py = PythonCataloger().catalog(fs, None)
    assert not py.packages and py.unknowns[0].location.path == "/site-packages/bad.dist-info/METADATA"


def test_dpkg_package_is_attributed_to_the_layer_that_added_that_version() -> None:
    def para(name: str, version: str) -> bytes:
        return f"Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: all\n\n".encode()

    base = layer_from_entries([Entry("var/lib/dpkg/status", para("a", "1") + para("b", "1"))])
    upgrade = layer_from_entries([Entry("var/lib/dpkg/status", para("a", "1") + para("b", "2") + para("c", "1"))])
    fs = squash(base, upgrade)
    layers = {p.name: p.layer for p in DpkgCataloger().catalog(fs, None).packages}
    assert layers == {"a": f"sha256:{0:064d}", "b": f"sha256:{1:064d}", "c": f"sha256:{1:064d}"}


def test_the_deferred_catalogers_are_named_as_their_classes_and_read_the_same_globs() -> None:
    import importlib

    from giropops.sbom.catalogers import DEFERRED

    for module, cls, name, globs in DEFERRED:
        real = getattr(importlib.import_module(f"giropops.sbom.catalogers.{module}"), cls)()
        assert (real.name, tuple(real.globs), getattr(real, "extractors", ())) == (name, globs, ())
    deferred = {c.name for c in default_catalogers()}
    assert {name for _, _, name, _ in DEFERRED} <= deferred


def test_the_catalogers_of_extracted_files_are_deferred_as_their_classes_and_extractors() -> None:
    import importlib
    import stat as st

    from giropops.sbom import catalogers
    from giropops.sbom.catalogers import elf, java, rpm

    reals = {
        "rpm-db": rpm.RpmDbCataloger(), "go-binary": importlib.import_module("giropops.sbom.catalogers.golang")
        .GoBinaryCataloger(), "rust-audit-binary": importlib.import_module("giropops.sbom.catalogers.rust")
        .RustBinaryCataloger(), "java-archive": java.JavaArchiveCataloger(),
    }
    deferred = {c.name: c for c in default_catalogers() if c.name in reals}
    assert set(deferred) == set(reals)
    samples = [("usr/bin/go", st.S_IFREG | 0o755), ("usr/lib/x.so", st.S_IFREG | 0o644), ("bin", st.S_IFDIR | 0o755),
               ("app/lib/a.JAR", st.S_IFREG | 0o644), ("x/b.war", st.S_IFREG | 0o644), ("a.zip", st.S_IFREG | 0o644),
               ("var/lib/rpm/Packages", st.S_IFREG | 0o644), ("usr/lib/sysimage/rpm/rpmdb.sqlite", st.S_IFREG | 0o644),
               ("var/lib/rpm/Packages.bak", st.S_IFREG | 0o644), ("usr/bin/x.jar", st.S_IFREG | 0o755)]
    for name, real in reals.items():
        lazy = deferred[name]
        assert lazy.globs == tuple(real.globs) == ()
        (lazy_x,) = lazy.extractors  # type: ignore[attr-defined]
        (real_x,) = real.extractors  # type: ignore[attr-defined]
        assert (lazy_x.name, lazy_x.version, lazy_x.max_bytes) == (real_x.name, real_x.version, real_x.max_bytes)
        assert [lazy_x.wants(p, m) for p, m in samples] == [real_x.wants(p, m) for p, m in samples]
        assert hasattr(lazy_x, "extract_mapped") == hasattr(real_x, "extract_mapped")
    assert catalogers.JAR_SUFFIXES == java.SUFFIXES and catalogers.RPM_DATABASES == rpm.DATABASES
    assert catalogers.MAX_BINARY_BYTES == elf.MAX_BINARY_BYTES

