"""Java archives: Debian's real jars, a Spring-Boot-style fat jar, a war and an ear assembled here from
those real jars, compared with what the archives say (read with Python's zipfile) and with Trivy."""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from giropops.sbom.catalogers.java import NAME as JAVA
from tests.sbom.conftest import BuiltImage
from tests.sbom.ecosys_support import apt_download, name_of_purl, trivy_inventory, unpack_deb
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

DEBS = ("libcommons-lang3-java", "libcommons-io-java", "libslf4j-java")


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def poms_of(jar: bytes) -> set[tuple[str, str]]:
    """(groupId:artifactId, version) of every pom.properties in a jar, read here with zipfile."""
    out = set()
    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        for n in zf.namelist():
            if n.startswith("META-INF/maven/") and n.endswith("/pom.properties"):
                props = dict(
                    line.split("=", 1) for line in zf.read(n).decode().splitlines() if "=" in line and line[0] != "#"
                )
                out.add((f"{props['groupId']}:{props['artifactId']}", props["version"]))
    return out


@pytest.fixture(scope="session")
def java_root(work: Path) -> Path:
    root = work / "java-root"
    if not root.exists():
        for deb in apt_download(DEBS, work / "java-debs").values():
            unpack_deb(deb, root)
    return root


@pytest.fixture(scope="session")
def java_image(work: Path, java_root: Path) -> BuiltImage:
    share = java_root / "usr/share/java"
    lang3 = (share / "commons-lang3.jar").read_bytes()
    cio = (share / "commons-io.jar").read_bytes()
    slf4j = (share / "slf4j-api.jar").read_bytes()
    boot = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n"
            b"Main-Class: org.springframework.boot.loader.JarLauncher\r\n",
            "META-INF/maven/com.example/demo/pom.properties": b"groupId=com.example\nartifactId=demo\nversion=1.0.0\n",
            "BOOT-INF/lib/commons-lang3-3.12.0.jar": lang3,
            "BOOT-INF/lib/commons-io-2.11.0.jar": cio,
        }
    )
    war = _zip({"WEB-INF/lib/slf4j-api-1.7.32.jar": slf4j, "WEB-INF/web.xml": b"<web-app/>"})
    ear = _zip({"web.war": war, "META-INF/application.xml": b"<application/>"})
    manifest_only = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Title: tool\n"
            b"Implementation-Version: 2.5\nImplementation-Vendor-Id: org.example\n"
        }
    )
    base = im.layer_from_dir(java_root, work / "java-debs.tar")
    apps = layer_from_entries(
        [
            Entry("app/app.jar", data=boot),
            Entry("srv/site.ear", data=ear),
            Entry("opt/tool.jar", data=manifest_only),
        ]
    )
    return im.image(work, "java", [base, apps])


def test_jars_equal_their_pom_properties(java_image: BuiltImage, java_root: Path) -> None:
    sbom = sbom_for(f"archive://{java_image.tar}", use_cache=False)
    mine = {(p.locations[0].path, p.name, p.version) for p in sbom.packages if p.type == "maven"}
    expected = set()
    for jar in sorted((java_root / "usr/share/java").iterdir()):
        if jar.is_file() and not jar.is_symlink():
            for name, version in poms_of(jar.read_bytes()):
                expected.add(("/usr/share/java/" + jar.name, name, version))
    lang3 = poms_of((java_root / "usr/share/java/commons-lang3.jar").read_bytes())
    assert lang3 == {("org.apache.commons:commons-lang3", "3.12.0")}
    expected |= {
        ("/app/app.jar", "com.example:demo", "1.0.0"),
        ("/app/app.jar", "org.apache.commons:commons-lang3", "3.12.0"),
        ("/app/app.jar", "commons-io:commons-io", "2.11.0"),
        ("/srv/site.ear", "org.slf4j:slf4j-api", "1.7.32"),
        ("/opt/tool.jar", "org.example:tool", "2.5"),
    }
    assert mine == expected
    for p in sbom.packages:
        if p.type == "maven":
            assert name_of_purl(p.purl) == ("maven", p.name, p.version)
    nested = next(p for p in sbom.packages if p.locations[0].path == "/srv/site.ear")
    assert nested.metadata["archive"] == "!/web.war!/WEB-INF/lib/slf4j-api-1.7.32.jar"
    assert sbom.unknowns == ()


def test_jars_equal_trivy(java_image: BuiltImage, tmp_path: Path) -> None:
    sbom = sbom_for(f"archive://{java_image.tar}", use_cache=False)
    mine = {("maven", p.name, p.version) for p in sbom.packages if p.type == "maven"}
    theirs = trivy_inventory(java_image.tar, tmp_path / "trivy", {"maven"}, java_db=True)
    # Convention difference (docs/sbom-conventions.md): offline, Trivy drops a jar known only by its
    # MANIFEST.MF (it would look its digest up in its Java DB); we keep what the manifest says.
    assert mine - theirs == {("maven", "org.example:tool", "2.5")}
    assert theirs - mine == set()


def test_hostile_archives(work: Path) -> None:
    bomb_entry = zipfile.ZipInfo("BOOT-INF/lib/bomb.jar")
    bomb_entry.compress_type = zipfile.ZIP_DEFLATED
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(bomb_entry, b"\0" * (200 * 1024 * 1024))
    bomb = buf.getvalue()
    assert len(bomb) < 1024 * 1024  # a small file that inflates to 200 MiB
    deep = _zip({"META-INF/maven/g/a/pom.properties": b"groupId=g\nartifactId=a\nversion=1\n"})
    for i in range(6):
        deep = _zip({f"lib/level{i}.jar": deep})
    corrupt = bytearray(_zip({"META-INF/maven/g/b/pom.properties": b"groupId=g\nartifactId=b\nversion=1\n" * 50}))
    corrupt[60:90] = b"\xff" * 30
    layer = layer_from_entries(
        [
            Entry("a/bomb.jar", data=bomb),
            Entry("a/deep.jar", data=deep),
            Entry("a/notzip.jar", data=b"PK\x03\x04 not really"),
            Entry("a/corrupt.jar", data=bytes(corrupt)),
            Entry("a/zlib.war", data=zlib.compress(b"x")),
        ]
    )
    sbom = sbom_for(f"archive://{im.image(work, 'java-hostile', [layer]).tar}", use_cache=False)
    assert sbom.packages == ()
    unknown = {(u.location.path, u.error.split(":")[0]) for u in sbom.unknowns if u.cataloger == JAVA}
    assert ("/a/bomb.jar!/BOOT-INF/lib/bomb.jar", "BOOT-INF/lib/bomb.jar") in unknown
    assert any(p.startswith("/a/deep.jar!/lib/level5.jar!/lib/level4.jar!/lib/level3.jar!/") for p, _ in unknown)
    assert {p for p, _ in unknown} >= {"/a/notzip.jar", "/a/corrupt.jar", "/a/zlib.war"}


def test_archives_over_the_size_limit_are_unknowns_not_silence(tmp_path: Path) -> None:
    from giropops.sbom import generate_from_directory
    from giropops.sbom.catalogers.golang import GoBinaryCataloger
    from giropops.sbom.catalogers.java import JarExtractor, JavaArchiveCataloger

    class SmallJars(JarExtractor):
        max_bytes = 1000

    class SmallJava(JavaArchiveCataloger):
        extractors = (SmallJars(),)

    small = _zip({"META-INF/maven/g/a/pom.properties": b"groupId=g\nartifactId=a\nversion=1\n"})
    big = _zip({"META-INF/maven/g/b/pom.properties": b"groupId=g\nartifactId=b\nversion=2\n", "x": b"\1" * 5000})
    big = big + b"\0" * 1000 if len(big) <= 1000 else big
    (tmp_path / "small.jar").write_bytes(small)
    (tmp_path / "big.jar").write_bytes(big)
    sbom = generate_from_directory(tmp_path, catalogers=[SmallJava(), GoBinaryCataloger()])
    assert [(p.name, p.version) for p in sbom.packages] == [("g:a", "1")]
    assert [(u.location.path, u.error.split(" bytes")[0]) for u in sbom.unknowns] == [
        ("/big.jar", f"archive of {len(big)}")
    ]
