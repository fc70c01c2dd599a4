"""npm packages in images: real node_modules laid out by npm, compared with npm's own view and Trivy's."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from giropops.sbom.catalogers.npm import NpmCataloger
from tests.sbom.conftest import BuiltImage
from tests.sbom.ecosys_support import name_of_purl, npm_install, trivy_inventory
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries, whiteout

SPECS = ("@babel/code-frame@7.22.5", "debug@2.6.9", "ms@2.1.3")


@pytest.fixture(scope="session")
def node_app(work: Path) -> Path:
    root = work / "node-app"
    npm_install(root, *SPECS)
    return root


def npm_ls(root: Path) -> set[tuple[str, str]]:
    """Every installed (name, version), as npm itself reports the tree."""
    npm = shutil.which("npm")
    assert npm
    out = subprocess.run([npm, "ls", "--all", "--json", "--prefix", str(root)], capture_output=True, check=True)
    found: set[tuple[str, str]] = set()
    stack = [json.loads(out.stdout)]
    while stack:
        node = stack.pop()
        for name, dep in (node.get("dependencies") or {}).items():
            found.add((name, dep["version"]))
            stack.append(dep)
    return found


@pytest.fixture(scope="session")
def node_image(work: Path, node_app: Path) -> BuiltImage:
    layer = im.layer_from_dir(node_app / "node_modules", work / "node.tar", prefix="app/node_modules")
    return im.image(work, "node", [layer])


def test_node_modules_equal_npm_ls(node_image: BuiltImage, node_app: Path) -> None:
    sbom = sbom_for(f"archive://{node_image.tar}", use_cache=False)
    npm = [p for p in sbom.packages if p.type == "npm"]
    mine = {(p.name, p.version) for p in npm}
    expected = npm_ls(node_app)
    assert mine == expected
    # several versions of one name, scoped and nested packages are all there, each at its place
    assert {v for n, v in mine if n == "ms"} == {"2.0.0", "2.1.3"}
    by_key = {(p.name, p.version): p for p in npm}
    nested = by_key[("ms", "2.0.0")]
    assert nested.locations[0].path == "/app/node_modules/debug/node_modules/ms/package.json"
    assert (
        nested.locations[0].layer
        == "sha256:" + hashlib.sha256(Path(str(node_image.layers[0])).read_bytes()).hexdigest()
    )
    scoped = by_key[("@babel/code-frame", "7.22.5")]
    assert scoped.purl == "pkg:npm/%40babel/code-frame@7.22.5"
    assert scoped.licenses == ("MIT",)
    for p in npm:
        assert name_of_purl(p.purl) == ("npm", p.name, p.version)


def test_node_modules_equal_trivy(node_image: BuiltImage, tmp_path: Path) -> None:
    sbom = sbom_for(f"archive://{node_image.tar}", use_cache=False)
    mine = {("npm", p.name, p.version) for p in sbom.packages if p.type == "npm"}
    theirs = trivy_inventory(node_image.tar, tmp_path / "trivy", {"npm"})
    assert mine and mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))


def test_whited_out_package_is_gone(node_image: BuiltImage, work: Path) -> None:
    upper = layer_from_entries([whiteout("app/node_modules/debug")])
    img = im.image(work, "node-whiteout", [*node_image.layers, upper])
    names = {(p.name, p.version) for p in sbom_for(f"archive://{img.tar}", use_cache=False).packages}
    assert ("debug", "2.6.9") not in names and ("ms", "2.0.0") not in names
    assert ("ms", "2.1.3") in names


def test_hostile_package_json_is_an_unknown_not_a_crash(work: Path) -> None:
    layer = layer_from_entries(
        [
            Entry("node_modules/bad/package.json", data=b"{not json"),
            Entry("node_modules/deep/package.json", data=b"[" * 100000),
            Entry("node_modules/arr/package.json", data=b"[1]"),
            Entry("node_modules/noversion/package.json", data=b'{"name": "noversion"}'),
            Entry(
                "node_modules/ok/package.json", data=b'{"name": "ok", "version": "1.0.0", "license": {"type": "ISC"}}'
            ),
            Entry("node_modules/ok/lib/package.json", data=b'{"name": "inner", "version": "9.9.9"}'),
        ]
    )
    img = im.image(work, "node-hostile", [layer])
    sbom = sbom_for(f"archive://{img.tar}", use_cache=False)
    assert [(p.name, p.version, p.licenses) for p in sbom.packages] == [("ok", "1.0.0", ("ISC",))]
    assert {u.location.path for u in sbom.unknowns if u.cataloger == NpmCataloger.name} == {
        "/node_modules/bad/package.json",
        "/node_modules/deep/package.json",
        "/node_modules/arr/package.json",
    }
