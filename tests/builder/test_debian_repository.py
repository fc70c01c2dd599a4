"""The Debian chain of trust against the real mirror of this machine's apt sources, through a tampering proxy."""

from __future__ import annotations

import http.server
import io
import lzma
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from giropops.builder.cache import Cache
from giropops.builder.debian import (
    DEFAULT_EXCLUDES,
    DebianRepository,
    Source,
    apt_sources,
    compare_versions,
    open_deb,
)
from giropops.builder.errors import IntegrityError, PackageError, SignatureError
from giropops.builder.layer import Tree

Tamper = Callable[[str, bytes], bytes]


class TamperingProxy:
    """Serves the real mirror on 127.0.0.1, passing every body through ``tamper(path, body)``."""

    def __init__(self, upstream: str, tamper: Tamper) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=60) as resp:
                        body = resp.read()
                except urllib.error.HTTPError as exc:
                    self.send_error(exc.code)
                    return
                body = outer.tamper(self.path, body)
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.tamper = tamper
        self.paths: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mirror() -> Source:
    """The first Debian suite of this machine's apt sources (the only configuration of a mirror)."""
    return next(s for s in apt_sources() if "-" not in s.suite)


@pytest.fixture(scope="module")
def resolved(mirror: Source, build_cache: Cache) -> DebianRepository:
    repo = DebianRepository([Source(mirror.uri, mirror.suite, ("main",))], "amd64", build_cache)
    return repo


def _flip(body: bytes, at: int = -100) -> bytes:
    b = bytearray(body)
    b[at] ^= 0x01
    return bytes(b)


def test_resolution_follows_depends_and_drops_excluded(resolved: DebianRepository) -> None:
    res = resolved.resolve(["python3.11-minimal", "ca-certificates"], DEFAULT_EXCLUDES)
    names = {p.name for p in res.packages}
    # python3.11-minimal Pre-Depends on libc6 and Depends on libpython3.11-minimal, zlib1g, libexpat1.
    assert {"python3.11-minimal", "libpython3.11-minimal", "libc6", "zlib1g", "libexpat1"} <= names
    assert not names & {"dpkg", "perl-base", "bash", "dash", "debconf", "openssl"}
    assert any(d.startswith("ca-certificates: debconf") for d in res.dropped)
    # Cross-check with apt's own resolver view: apt-cache depends names the same direct dependencies.
    apt = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "python3.11-minimal"],
                         capture_output=True, text=True, check=True).stdout
    direct = {line.split(":", 1)[1].strip().strip("<>") for line in apt.splitlines()
              if line.strip().startswith(("Depends:", "PreDepends:"))}
    assert direct <= names | set(DEFAULT_EXCLUDES)


def test_a_virtual_package_is_satisfied_by_its_provider(resolved: DebianRepository) -> None:
    # base-files Pre-Depends on awk, a virtual package: some real package that Provides awk is chosen.
    res = resolved.resolve(["base-files"], [])
    showpkg = subprocess.run(["apt-cache", "showpkg", "awk"], capture_output=True, text=True, check=True).stdout
    providers = {line.split()[0] for line in showpkg.split("Reverse Provides:", 1)[1].splitlines() if line.strip()}
    assert providers, showpkg
    assert {p.name for p in res.packages} & providers


def test_tampered_inrelease_is_rejected(mirror: Source, tmp_path: Path) -> None:
    def tamper(path: str, body: bytes) -> bytes:
        return body.replace(b"Debian", b"Dabian", 1) if path.endswith("/InRelease") else body

    with TamperingProxy(mirror.uri, tamper) as proxy:
        repo = DebianRepository([Source(proxy.url, mirror.suite, ("main",))], "amd64", Cache(tmp_path))
        with pytest.raises(SignatureError, match="signature does not verify"):
            repo.releases()


def test_untrusted_keyring_is_rejected(mirror: Source, tmp_path: Path) -> None:
    # A real OpenPGP keyring that holds none of the keys the archive signs with today.
    removed = Path("/usr/share/keyrings/debian-archive-removed-keys.gpg")
    assert removed.is_file()
    repo = DebianRepository([Source(mirror.uri, mirror.suite, ("main",), removed)], "amd64", Cache(tmp_path))
    with pytest.raises(SignatureError):
        repo.releases()


def test_tampered_packages_index_is_rejected(mirror: Source, tmp_path: Path) -> None:
    def tamper(path: str, body: bytes) -> bytes:
        if "/binary-amd64/" in path and ("Packages" in path or "/by-hash/" in path):
            text = lzma.decompress(body).replace(b"Package: netbase\n", b"Package: netbas3\n", 1)
            return lzma.compress(text, preset=0)
        return body

    with TamperingProxy(mirror.uri, tamper) as proxy:
        repo = DebianRepository([Source(proxy.url, mirror.suite, ("main",))], "amd64", Cache(tmp_path))
        with pytest.raises(IntegrityError, match=r"SHA-256|bytes"):
            repo.universe()
        assert any("binary-amd64" in p for p in proxy.paths)
    assert not list((tmp_path / "blobs").rglob("*")) or all(p.is_dir() for p in (tmp_path / "blobs").rglob("*"))


def test_tampered_deb_is_rejected(mirror: Source, resolved: DebianRepository, tmp_path: Path) -> None:
    netbase = next(p for p in resolved.resolve(["netbase"], []).packages if p.name == "netbase")

    def tamper(path: str, body: bytes) -> bytes:
        return _flip(body) if path.endswith(".deb") else body

    with TamperingProxy(mirror.uri, tamper) as proxy:
        repo = DebianRepository([Source(proxy.url, mirror.suite, ("main",))], "amd64", Cache(tmp_path))
        from dataclasses import replace

        with pytest.raises(IntegrityError, match="does not match the SHA-256"):
            repo.download(replace(netbase, base_url=proxy.url))
    assert not (Cache(tmp_path).blob_path(netbase.sha256)).exists()


@settings(max_examples=150, deadline=None)
@given(
    st.from_regex(r"([0-9]:)?[0-9][0-9a-z.+~]{0,8}(-[0-9a-z.+~]{1,6})?", fullmatch=True),
    st.from_regex(r"([0-9]:)?[0-9][0-9a-z.+~]{0,8}(-[0-9a-z.+~]{1,6})?", fullmatch=True),
)
def test_version_order_agrees_with_dpkg(a: str, b: str) -> None:
    ours = compare_versions(a, b)
    lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
    eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0
    assert (ours < 0) == lt and (ours == 0) == eq, (a, b, ours)


# ------------------------------------------------------------------ hostile packages


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return bytes(out)


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for ti in entries:
            body = (data or {}).get(ti.name)
            if body is not None:
                ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def _deb(data_entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    ctrl = tarfile.TarInfo("./control")
    control = _tar([ctrl], {"./control": b"Package: evil\nVersion: 1\nArchitecture: all\n"})
    return _ar([("debian-binary", b"2.0\n"), ("control.tar", control),
                ("data.tar.xz", lzma.compress(_tar(data_entries, data)))])


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    return ti


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("./../../etc/evil"), "escapes the root"),
        (_member("/etc/passwd"), "absolute member name"),
        (_member("./usr/x", tarfile.LNKTYPE, "./etc/shadow"), "not an earlier file"),
        (_member("./dev/sda", tarfile.BLKTYPE), "device"),
    ],
)
def test_hostile_deb_members_are_refused(member: tarfile.TarInfo, message: str) -> None:
    deb = open_deb(_deb([member], {member.name: b"x"} if member.type == tarfile.REGTYPE else None), "evil.deb")
    with pytest.raises(PackageError, match=message):
        Tree().add_tar(deb.data_tar, "evil.deb")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not an archive", "not an ar archive"),
        (_ar([("debian-binary", b"2.0\n")]), "missing control.tar or data.tar"),
        (b"!<arch>\n" + b"debian-binary   0           0     0     100644  99999     `\n2.0\n", "truncated"),
        (_ar([("debian-binary", b"2.0\n"), ("control.tar", b"x" * 600), ("data.tar.xz", b"junk")]), "corrupt"),
    ],
)
def test_malformed_debs_are_refused(blob: bytes, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        open_deb(blob, "bad.deb")


def test_real_deb_unpacks_without_running_anything(resolved: DebianRepository, build_cache: Cache) -> None:
    pkg = next(p for p in resolved.resolve(["netbase"], []).packages if p.name == "netbase")
    deb = open_deb(resolved.download(pkg), "netbase.deb")
    tree = Tree()
    added = tree.add_tar(deb.data_tar, "netbase.deb")
    assert "etc/services" in added
    # The same files dpkg-deb lists.
    path = build_cache.blob_path(pkg.sha256)
    listed = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(listed)) as tf:
        files = {m.name.removeprefix("./") for m in tf.getmembers() if not m.isdir()}
    assert set(added) == files
    assert "Package: netbase" in deb.control


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/etc/passwd", "pool/../../x.deb"])
def test_hostile_filename_in_packages_index_is_refused(filename: str) -> None:
    from giropops.builder.debian import parse_packages
    from giropops.builder.errors import RepositoryError

    text = f"Package: x\nVersion: 1\nArchitecture: all\nFilename: {filename}\nSize: 1\nSHA256: {'0' * 64}\n"
    with pytest.raises(RepositoryError, match="hostile Filename"):
        parse_packages(text, "http://127.0.0.1:1", "test index")
