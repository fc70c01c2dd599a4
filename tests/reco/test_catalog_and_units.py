"""The catalog file (built-in, user files, hostile ones) and the small rules the reports rest on."""

from __future__ import annotations

from pathlib import Path

import pytest

from giropops.cli import exitcodes
from giropops.cli.main import main
from giropops.errors import ConfigError
from giropops.policy.evaluate import is_root, licence_ids, normalize_license
from giropops.reco.catalog import ENV_VAR, load_catalog
from giropops.reco.profile import detect_runtime, version_tuple
from giropops.reco.recommend import human_size
from giropops.sbom.model import Package
from tests.reco.conftest import World


def test_builtin_catalog_lists_minimal_alternatives() -> None:
    cat = load_catalog(environ={})
    python = [e.image for e in cat.for_runtime("python")]
    assert "gcr.io/distroless/python3-debian12:latest" in python
    assert "cgr.dev/chainguard/python:latest" in python
    assert {e.flavour for e in cat.entries} == {"distroless", "wolfi"}
    assert {e.runtime for e in cat.entries} >= {"python", "node", "java", "go"}


def test_user_catalogs_extend_or_replace(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("runtimes:\n  python:\n    - image: registry.example.org/python:3.12-minimal\n"
                     "      flavour: minimal\n")
    only = tmp_path / "only.yaml"
    only.write_text("replace: true\nruntimes:\n  ruby:\n    - image: registry.example.org/ruby:3\n")
    cat = load_catalog(environ={ENV_VAR: str(extra)})
    assert cat.for_runtime("python")[-1].image == "registry.example.org/python:3.12-minimal"
    assert len(cat.for_runtime("python")) == 4
    cat = load_catalog([only], environ={ENV_VAR: str(extra)})
    assert [(e.runtime, e.image) for e in cat.entries] == [("ruby", "registry.example.org/ruby:3")]


@pytest.mark.parametrize(("text", "message"), [
    ("runtimes: [1, 2]\n", "'runtimes' must map"),
    ("runtimes:\n  python:\n    - flavour: x\n", "runtimes.python[0]: 'image' must be an image reference"),
    ("runtimes:\n  python:\n    - image: 'UPPER/Case:1'\n", "runtimes.python[0]: invalid image reference"),
    ("runtimes:\n  python:\n    - image: a/b\n      colour: red\n", "unknown key(s) colour"),
    ("version: 2\n", "unsupported catalog version 2"),
    ("replace: sometimes\n", "'replace' must be true or false"),
    ("runtimes: {python: [\n", "not valid YAML"),
])
def test_hostile_catalogs(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_catalog([bad], environ={})
    assert message in str(info.value) and str(bad) in str(info.value)


def test_catalog_errors_reach_the_cli(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe not utf-8")
    code = main(["recommendations", f"{world.apps}:annotated", "--db", str(world.db), "--catalog", str(bad)])
    out = capsys.readouterr()
    assert code == exitcodes.ERROR and out.out == ""
    assert out.err == f"giropops: error: catalog {bad} is not UTF-8\n"
    code = main(["recommendations", f"{world.apps}:annotated", "--catalog", str(tmp_path / "missing.yaml")])
    assert code == exitcodes.ERROR
    assert "cannot read catalog" in capsys.readouterr().err


def test_cli_usage_and_image_errors(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommendations", "Not/A/Valid:Ref!", "--db", str(world.db), "--catalog", str(world.catalog)])
    err = capsys.readouterr().err
    assert code == exitcodes.ERROR and err.startswith("giropops: error: invalid image reference")
    code = main(["recommendations", f"{world.apps}:no-such-tag", "--db", str(world.db), "--catalog",
                 str(world.catalog)])
    err = capsys.readouterr().err
    assert code == exitcodes.ERROR and "giropops: error:" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        main(["recommendations", "x", "--only-refresh", "--only-update"])
    assert info.value.code == exitcodes.USAGE
    capsys.readouterr()


def test_runtime_detection() -> None:
    assert detect_runtime(["PATH=/bin", "PYTHON_VERSION=3.12.7"], []).__str__() == "python 3.12.7"
    deb = Package("python3.11", "3.11.2-6+deb12u5", "deb")
    rt = detect_runtime([], [Package("libc6", "2.36-9", "deb"), deb])
    assert rt is not None and (rt.name, rt.version, rt.source) == ("python", "3.11.2", "package python3.11")
    node = detect_runtime([], [Package("nodejs-20", "20.18.1-r0", "apk")])
    assert node is not None and (node.name, node.version) == ("node", "20.18.1")
    assert detect_runtime(["HOME=/root"], [Package("zlib1g", "1:1.2.13.dfsg-1", "deb")]) is None
    assert version_tuple("3.12.7-slim-bookworm") == (3, 12, 7)
    assert version_tuple("latest") == ()


def test_words() -> None:
    assert human_size(31_000_000) == "31 MB"
    assert human_size(1_500_000) == "1.5 MB"
    assert human_size(999) == "999 B"
    assert normalize_license("GPL-2+") == normalize_license("GPL-2.0-or-later") == "GPL-2.0"
    assert normalize_license("lgpl-2.1-only") == "LGPL-2.1"
    assert licence_ids("(MIT OR GPL-3.0-only) AND Apache-2.0 WITH LLVM-exception") == [
        "MIT", "GPL-3.0-only", "Apache-2.0", "LLVM-exception"]
    assert [is_root(u) for u in ("", "root", "0", "0:0", "root:staff", "65532", "nonroot", "1000:1000")] == [
        True, True, True, True, True, False, False, False]
