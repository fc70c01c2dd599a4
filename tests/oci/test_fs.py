"""fs://DIR: a root filesystem as a deterministic one-layer image."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile

import pytest

from giropops.errors import ArchiveError
from giropops.oci.fs import open_fs


@pytest.fixture
def rootfs(tmp_path, hello_binary):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(hello_binary, root / "bin" / "hello")
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("hi\n")
    os.link(root / "etc" / "motd", root / "etc" / "motd.hard")
    (root / "hello").symlink_to("bin/hello")
    (root / "escape").symlink_to("/etc/shadow")  # stored as a link, never followed
    return root


def layer_members(image):
    import io

    data = image.layers()[0].open_uncompressed().read()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.getmembers()


def test_fs_image_is_deterministic_and_keeps_links(rootfs, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    a = open_fs(rootfs)
    os.utime(rootfs / "etc" / "motd", (1, 1))  # mtimes on disk do not matter
    b = open_fs(rootfs)
    assert a.digest == b.digest
    members = layer_members(a)
    names = [m.name for m in members]
    assert names == ["bin", "bin/hello", "escape", "etc", "etc/motd", "etc/motd.hard", "hello"]
    by = {m.name: m for m in members}
    assert all(m.mtime == 1234567890 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert by["hello"].issym() and by["hello"].linkname == "bin/hello"
    assert by["escape"].issym() and by["escape"].linkname == "/etc/shadow"
    assert by["etc/motd.hard"].islnk() and by["etc/motd.hard"].linkname == "etc/motd"
    assert by["bin/hello"].mode & 0o111
    assert a.config.created == "2009-02-13T23:31:30Z"


def test_fs_image_runs_in_podman(rootfs, tmp_path, podman):
    proc = subprocess.run([sys.executable, "-m", "giropops", "copy", "-q", f"fs://{rootfs}",
                           f"archive://{tmp_path}/fs.tar:example.com/fs:1"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    podman.run("load", "-i", str(tmp_path / "fs.tar"))
    out = podman.run("run", "--rm", "--network", "none", "example.com/fs:1", "/hello", "via", "symlink")
    assert out.stdout.strip() == "hello from giropops via symlink"


def test_sockets_and_fifos_are_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with pytest.raises(ArchiveError, match="refusing to put fifo"):
        open_fs(root)
    os.unlink(root / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        with pytest.raises(ArchiveError, match="refusing to put socket"):
            open_fs(root)
    finally:
        sock.close()
    with pytest.raises(ArchiveError, match="not a directory"):
        open_fs(tmp_path / "absent")
