"""Every source spec the OCI transport opens gives the same SBOM: archive, registry, OCI layout; and
``--platform`` picks the image of a multi-platform index."""

from __future__ import annotations

from pathlib import Path

from giropops.oci.model import Platform
from giropops.oci.transport import open_image, write_image
from giropops.sbom import sbom_for
from tests.sbom.conftest import BuiltImage
from tests.support.images import MemImage, MemIndex, MemLayer
from tests.support.services import Registry


def inventory(spec: str, platform: str | None = None) -> set[tuple[str, str, str, str | None]]:
    sbom = sbom_for(spec, platform, use_cache=False)
    return {(p.type, p.name, p.version, p.layer) for p in sbom.packages}


def test_registry_and_layout_give_the_archives_inventory(
    venv_image: BuiltImage, registry: Registry, tmp_path: Path
) -> None:
    archive = f"archive://{venv_image.tar}"
    want = inventory(archive)
    image = open_image(archive)
    write_image(image, f"registry://{registry.host}/sbom/venv:1")
    write_image(image, f"oci-dir://{tmp_path / 'layout'}:venv")
    assert inventory(f"registry://{registry.host}/sbom/venv:1") == want
    assert inventory(f"oci-dir://{tmp_path / 'layout'}:venv") == want
    from_registry = sbom_for(f"registry://{registry.host}/sbom/venv:1", use_cache=False)
    assert from_registry.subject.digest == str(open_image(f"registry://{registry.host}/sbom/venv:1").digest)


def test_platform_picks_the_image_of_an_index(tmp_path: Path) -> None:
    def one(arch: str, pkg: str) -> MemImage:
        status = f"Package: {pkg}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: {arch}\n\n"
        layer = MemLayer({"etc/os-release": b"ID=debian\nVERSION_ID=12\n", "var/lib/dpkg/status": status.encode()})
        return MemImage([layer], platform=Platform("linux", arch))

    index = MemIndex([one("amd64", "only-on-amd64"), one("arm64", "only-on-arm64")])
    write_image(index, f"oci-dir://{tmp_path / 'multi'}:app")  # type: ignore[arg-type]
    spec = f"oci-dir://{tmp_path / 'multi'}:app"
    arm = sbom_for(spec, "linux/arm64", use_cache=False)
    amd = sbom_for(spec, "linux/amd64", use_cache=False)
    assert [(p.name, p.arch) for p in arm.packages] == [("only-on-arm64", "arm64")]
    assert [(p.name, p.arch) for p in amd.packages] == [("only-on-amd64", "amd64")]
    assert arm.subject.platform == "linux/arm64"


def test_generate_on_any_image_implementation(tmp_path: Path) -> None:
    """The public API takes any ``Image``: here one built by the test kit, layer digests computed there."""
    from giropops.sbom import Subject, generate
    from giropops.sbom.cache import LayerCache

    base = MemLayer({"etc/os-release": b'ID="wolfi"\nVERSION_ID=20230201\nPRETTY_NAME="Wolfi"\n',
                     "lib/apk/db/installed": b"P:glibc\nV:2.38-r1\nA:x86_64\no:glibc\nL:LGPL-2.1-or-later\n\n"})
    app = MemLayer({"app/site-packages/demo-1.0.dist-info/METADATA": b"Name: Demo\nVersion: 1.0\n"})
    image = MemImage([base, app])
    sbom = generate(image, Subject("mem", str(image.digest)), cache=LayerCache(tmp_path))
    got = {(p.type, p.name, p.version, p.layer) for p in sbom.packages}
    assert got == {("apk", "glibc", "2.38-r1", str(base.diff_id)), ("python", "demo", "1.0", str(app.diff_id))}
    assert sbom.distro is not None and sbom.distro.osv_ecosystem == "Wolfi"
    assert sbom.subject.digest == str(image.digest)
