"""An output a user names that is not a regular file is written into, never renamed over.

``giropops sbom -o /dev/null`` once replaced the machine's ``/dev/null`` with a regular file: every output
was a temporary file renamed over its destination (no partial file), and a rename replaces whatever the
name held: a device, a FIFO, the ``/dev/stdout`` link.  Now (``fileio.output_target``) a device or a pipe is
written into where it is, a symbolic link stays a link (the file it leads to is replaced), and outputs
that cannot be streamed (an archive, written at offsets) refuse such a destination by name.  Caches keep
the plain rename: a link planted in a cache is replaced, not followed.

These tests never touch ``/dev/null`` itself: they name it through a link of their own, so that a failure
replaces the link, not the device.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from giropops.fileio import atomic_write
from tests.support.images import tar_of

STATUS = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u1\n\n"
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


@pytest.fixture
def image(tmp_path: Path) -> Path:
    from giropops.oci import mutate
    from giropops.oci.empty import empty_image
    from giropops.oci.transport import write_image

    path = tmp_path / "img.tar"
    img = mutate.append_layers(empty_image(), [mutate.layer_from_tar(tar_of(
        {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": STATUS}))])
    write_image(img, f"archive://{path}:out:1")
    return path


def _giropops(*argv: str, cache: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "giropops", *argv], capture_output=True, timeout=120, env=env)


def _sbom(image: Path, output: str, cache: Path) -> subprocess.CompletedProcess[bytes]:
    return _giropops("sbom", f"archive://{image}", "--format", "cyclonedx-json", "-o", output, cache=cache)


def _reference(image: Path, tmp_path: Path) -> bytes:
    ref = tmp_path / "reference.json"
    proc = _sbom(image, str(ref), tmp_path / "ref-cache")
    assert proc.returncode == 0, proc.stderr
    assert b"pkg:deb/debian/libc6@2.36-9%2Bdeb12u1" in ref.read_bytes()
    return ref.read_bytes()


def _read_fifo(fifo: Path, into: list[bytes]) -> threading.Thread:
    def run() -> None:
        with open(fifo, "rb") as f:
            into.append(f.read())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm stored result"])
def test_sbom_into_a_fifo_streams_it_and_the_fifo_stays(image: Path, tmp_path: Path, warm: bool) -> None:
    want = _reference(image, tmp_path)
    cache = tmp_path / "cache"
    if warm:  # the second run serves the stored result (cli._stored), through its own write
        assert _sbom(image, str(tmp_path / "first.json"), cache).returncode == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    proc = _sbom(image, str(fifo), cache)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert got == [want]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".pipe")) == []  # no temporary left


def test_sbom_through_a_link_to_dev_null_leaves_both_as_they_were(image: Path, tmp_path: Path) -> None:
    link = tmp_path / "discard"
    link.symlink_to("/dev/null")
    for _ in range(2):  # cold, then the stored result
        proc = _sbom(image, str(link), tmp_path / "cache")
        assert proc.returncode == 0, proc.stderr
        assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sbom_through_a_link_to_a_file_replaces_the_file_and_keeps_the_link(image: Path, tmp_path: Path) -> None:
    want = _reference(image, tmp_path)
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "latest.json"
    target.write_bytes(b"old report")
    link = tmp_path / "sbom.json"
    link.symlink_to(target)
    proc = _sbom(image, str(link), tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and target.read_bytes() == want


def test_an_archive_is_not_written_over_a_fifo(image: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it for writing would wait for a reader: the refusal comes before
    proc = _giropops("copy", f"archive://{image}", f"archive://{fifo}", cache=tmp_path / "cache")
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "Traceback" not in err
    assert f"{fifo} is not a regular file" in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_cache_write_replaces_a_planted_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    entry = tmp_path / "cache-entry"
    entry.symlink_to(victim)
    atomic_write(entry, b"record", 0o600)  # a cache's write (not FOLLOW_UMASK)
    assert not entry.is_symlink() and entry.read_bytes() == b"record"
    assert victim.read_bytes() == b"precious"


def test_a_cves_report_into_a_fifo_streams_it(tmp_path: Path) -> None:
    from giropops.cli.cves import write_output

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    write_output("report \u2713\n", fifo)
    reader.join(timeout=60)
    assert got == ["report \u2713\n".encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
