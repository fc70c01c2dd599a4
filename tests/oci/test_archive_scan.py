"""The headers of an image tarball are read by giropops' bounded tar reader (``sbom/tarstream.py``), not
``tarfile``: what it finds, and the one-line errors for what is not a tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from giropops.errors import ArchiveError
from giropops.oci.archive import TarStore


def store(path: Path) -> TarStore:
    return TarStore(path.open("rb"), path.name)


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    tar.addfile(info, io.BytesIO(data) if info.size else None)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_members_are_found_at_their_offsets_with_long_names_and_links(tmp_path: Path, fmt: int) -> None:
    long = "blobs/sha256/" + "d" * 64 if fmt == tarfile.USTAR_FORMAT else "deep/" + "x" * 150 + "/file.json"
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w", format=fmt) as tar:
        add(tar, "dir/", kind=tarfile.DIRTYPE)
        add(tar, long, b"long-named contents")
        add(tar, "index.json", b'{"a": 1}')
        add(tar, "dir/sym", kind=tarfile.SYMTYPE, link="../index.json")
        add(tar, "hard", kind=tarfile.LNKTYPE, link=long)
        add(tar, "index.json", b"replaced")  # a later member of the same name wins, as in tar
    s = store(path)
    assert s.read_member(long, 1000, "file") == b"long-named contents"
    assert s.read_member("dir/sym", 1000, "file") == b"replaced"
    assert s.read_member("hard", 1000, "file") == b"long-named contents"
    with tarfile.open(path) as tar:  # the offsets are those tarfile reports
        offsets = {m.name: m.offset_data for m in tar.getmembers() if m.isreg()}
    assert s.files[long].offset == offsets[long] and s.files["index.json"].offset == offsets["index.json"]


def test_what_is_not_a_tar_is_one_clear_error(tmp_path: Path) -> None:
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "index.json", b"x" * 3000)
        add(tar, "oci-layout", b"{}")
    data = good.read_bytes()
    cases = {
        "empty": (b"", "not a valid tar file: empty file"),
        "zeros": (bytes(10240), "not a valid tar file: empty file"),
        "json": (b'{"not": "a tar"}' * 64, "not a valid tar file"),
        "header-cut": (data[:3700], "truncated tar file"),  # within the second header
        "body-cut": (data[:2048], "runs past the end of the file"),
        "checksum": (data[:148] + b"0000000\0" + data[156:], "checksum mismatch"),
    }
    for name, (content, needle) in cases.items():
        path = tmp_path / f"{name}.tar"
        path.write_bytes(content)
        with pytest.raises(ArchiveError, match=f"^archive {name}.tar: .*{needle}") as err:
            store(path)
        assert "\n" not in str(err.value)


def test_special_files_and_escaping_names_are_refused(tmp_path: Path) -> None:
    for name, kind, link, needle in (("fifo", tarfile.FIFOTYPE, "", "device, fifo or other special file"),
                                     ("../up", tarfile.REGTYPE, "", "contains '..'"),
                                     ("/abs", tarfile.REGTYPE, "", "absolute path"),
                                     ("s", tarfile.SYMTYPE, "../../x", "escapes the archive"),
                                     ("h", tarfile.LNKTYPE, "../x", "contains '..'")):
        path = tmp_path / "bad.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            add(tar, "ok", b"1")
            add(tar, name, kind=kind, link=link)
        with pytest.raises(ArchiveError, match=needle):
            store(path)
