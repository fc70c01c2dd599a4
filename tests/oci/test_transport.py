from __future__ import annotations

from pathlib import Path

import pytest

from giropops.errors import DaemonError, GiropopsError, ImageError, ImageReferenceError
from giropops.oci.transport import (
    ArchiveSpec,
    FSSpec,
    LocalSpec,
    OCIDirSpec,
    RegistrySpec,
    SBOMFileSpec,
    open_any,
    parse_spec,
    write_image,
)
from tests.support.oci_images import random_image

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis", "registry://docker.io/library/redis:latest"),
        ("registry://127.0.0.1:5000/app:1", "registry://127.0.0.1:5000/app:1"),
        ("archive://img.tar", "archive://img.tar"),
        ("archive://out/img.tar:example.com:5000/app:1", "archive://out/img.tar:example.com:5000/app:1"),
        (f"archive://img.tar@{D}", f"archive://img.tar@{D}"),
        ("oci-dir://layout", "oci-dir://layout"),
        ("oci-dir://layout:v1", "oci-dir://layout:v1"),
        ("oci-dir://layout:", "oci-dir://layout"),
        (f"oci-dir:///abs/layout@{D}", f"oci-dir:///abs/layout@{D}"),
        ("fs:///srv/rootfs", "fs:///srv/rootfs"),
        ("local://myapp:1", "local://myapp:1"),
        ("sbom://out/app.spdx.json", "sbom://out/app.spdx.json"),
    ],
)
def test_specs_parse_and_print(text, expected):
    assert str(parse_spec(text)) == expected


def test_spec_types():
    assert isinstance(parse_spec("redis"), RegistrySpec)
    a = parse_spec("archive://x.tar:app:1")
    assert isinstance(a, ArchiveSpec) and a.path == Path("x.tar") and a.name == "app:1"
    o = parse_spec(f"oci-dir://dir@{D}")
    assert isinstance(o, OCIDirSpec) and str(o.digest) == D and o.name is None
    assert isinstance(parse_spec("fs://root"), FSSpec)
    assert isinstance(parse_spec("local://app"), LocalSpec)
    sb = parse_spec("sbom://dir/a:b.json")
    assert isinstance(sb, SBOMFileSpec) and sb.path == Path("dir/a:b.json")


def test_an_sbom_is_no_image_to_open_or_write(tmp_path):
    """``sbom://`` is part of the one grammar, but the image transports refuse it by name."""
    doc = tmp_path / "a.json"
    doc.write_text("{}")
    with pytest.raises(ImageReferenceError, match="an SBOM document is not an image"):
        open_any(f"sbom://{doc}")
    with pytest.raises(ImageReferenceError, match="an SBOM document is not an image"):
        write_image(random_image(1), SBOMFileSpec(tmp_path / "b.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_an_existing_path_with_a_colon_is_taken_whole(tmp_path):
    weird = tmp_path / "a:b.tar"
    weird.write_bytes(b"")
    s = parse_spec(f"archive://{weird}")
    assert isinstance(s, ArchiveSpec) and s.path == weird and s.name is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("docker://redis", "unknown scheme 'docker://'"),
        ("sbom://", "sbom:// needs a file"),
        ("", "empty"),
        ("archive://", "needs a path"),
        ("oci-dir://:v1", "needs a path"),
        (f"oci-dir://dir:v1@{D}", "not both"),
        ("fs://", "needs a directory"),
        ("local://", "needs an image name"),
        ("registry://UPPER/case", "invalid image reference"),
        ("Not A Ref", "invalid image reference"),
    ],
)
def test_malformed_specs_name_the_problem(text, needle):
    with pytest.raises(ImageReferenceError, match=needle):
        parse_spec(text)


def test_read_only_destinations_are_clear_errors(tmp_path):
    img = random_image(3)
    with pytest.raises(DaemonError, match="read-only"):
        write_image(img, "local://app:1")
    with pytest.raises(ImageError, match="source only"):
        write_image(img, f"fs://{tmp_path}")
    with pytest.raises(ImageReferenceError, match="cannot name a digest"):
        write_image(img, f"oci-dir://{tmp_path}/x@{D}")
    assert list(tmp_path.iterdir()) == []


ODD_PATHS = ["img.tar", "./img.tar", "a//b/./c.tar", "dir/", "/", "//srv/x", "///srv/x", "a/../b", ".", "./", "",
             "~/x.tar", "a:b.tar", "x/./"]


@pytest.mark.parametrize("text", ODD_PATHS)
def test_an_archive_path_is_read_as_pathlib_reads_it(text: str) -> None:
    from giropops.oci import transport

    assert transport._as_path(text) == str(Path(text))


def test_a_path_exists_as_pathlib_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from giropops.oci import transport

    (tmp_path / "f.tar").write_bytes(b"x")
    (tmp_path / "d").mkdir()
    (tmp_path / "loop").symlink_to("loop")
    monkeypatch.chdir(tmp_path)
    for text in ["f.tar", "f.tar/", "f.tar/inner", "d", "d/", "missing", "loop", "loop/x", "nul\x00", "./d//"]:
        assert transport._exists(text) == Path(text).exists(), text


def test_an_archive_spec_text_opens_what_its_parsed_spec_opens(tmp_path: Path) -> None:
    # open_any reads an 'archive://' text itself (no Path made of it): same image, same errors
    from giropops.oci.archive import write_archive

    img = random_image(1)
    write_archive(img, tmp_path / "img.tar", "example.com/app:1")
    for text in (f"archive://{tmp_path}//./img.tar", f"archive://{tmp_path}/img.tar:example.com/app:1",
                 f"archive://{tmp_path}/img.tar@{img.digest}"):
        assert open_any(text).digest == open_any(parse_spec(text)).digest == img.digest
    for text in (f"archive://{tmp_path}/missing.tar", f"archive://{tmp_path}/img.tar:other/app:2", "archive://",
                 f"archive://{tmp_path}/img.tar:x@{D}", f"archive://{tmp_path}"):
        with pytest.raises(GiropopsError) as from_text:
            open_any(text)
        with pytest.raises(GiropopsError) as from_spec:
            open_any(parse_spec(text))
        assert str(from_text.value) == str(from_spec.value) and type(from_text.value) is type(from_spec.value)
