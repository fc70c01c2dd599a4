"""The registry client's own HTTP layer (``giropops.oci.registry.http``) against real servers.

Redirects that leave the registry must not carry its credentials; ``http_proxy`` / ``no_proxy`` from the
environment are honoured; connections are kept alive; the push path imports neither requests nor urllib3.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from giropops.errors import RegistryError
from giropops.oci.registry import RegistryClient, RegistryOptions, RetryPolicy, write_registry
from giropops.oci.registry.transport import Transport
from giropops.oci.transport import write_image
from tests.oci.registry.conftest import ref_for
from tests.support.images import MemImage, MemLayer
from tests.support.imports import MODULES_WRAPPER
from tests.support.services import Registry

BLOB = MemLayer.random(300_000)
USER, PASSWORD = "alice", "s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class _Server:
    """A threaded loopback HTTP server that records (method, path, Authorization) per request."""

    def __init__(self, handle: type[BaseHTTPRequestHandler]) -> None:
        self.log: list[tuple[str, str, str | None]] = []
        self.connections = 0
        server = self

        class Handler(handle):  # type: ignore[valid-type,misc]
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def log_message(self, format: str, *args: object) -> None:
                pass

            def parse_request(self) -> bool:
                ok = bool(super().parse_request())
                if ok:
                    server.log.append((self.command, self.path, self.headers.get("Authorization")))
                return ok

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _reply(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes = b"") -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


class _Storage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        _reply(self, 200, {"Content-Type": "application/octet-stream"}, BLOB.blob)


def _registry_redirecting_to(storage_url: str) -> type[BaseHTTPRequestHandler]:
    class Reg(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != BASIC:
                _reply(self, 401, {"WWW-Authenticate": 'Basic realm="test"'})
            elif self.path.startswith("/v2/repo/blobs/"):
                _reply(self, 307, {"Location": storage_url + "/storage/blob?sig=1"})
            elif self.path.startswith("/same-origin/"):
                _reply(self, 200, {}, BLOB.blob)
            else:
                _reply(self, 404, {})

    return Reg


@pytest.fixture
def storage() -> Iterator[_Server]:
    with _Server(_Storage) as s:
        yield s


@pytest.mark.parametrize("storage_host", ["localhost", "127.0.0.1"])
def test_a_blob_redirected_off_the_registry_is_fetched_without_the_registry_credentials(
    storage: _Server, storage_host: str
) -> None:
    # "localhost" is another host name; 127.0.0.1 on another port is another origin: both are "elsewhere"
    with _Server(_registry_redirecting_to(f"http://{storage_host}:{storage.port}")) as reg:
        client = RegistryClient(f"127.0.0.1:{reg.port}", RegistryOptions(username=USER, password=PASSWORD))
        with client.open_blob("repo", BLOB.digest, BLOB.size) as f:
            assert f.read() == BLOB.blob
        client.close()
    assert [a for m, p, a in reg.log if p.startswith("/v2/repo/blobs/")][-1] == BASIC
    assert [(m, p) for m, p, _a in storage.log] == [("GET", "/storage/blob?sig=1")]
    assert [a for _m, _p, a in storage.log] == [None]


def test_a_redirect_within_the_registry_keeps_the_credentials() -> None:
    class SameOrigin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != BASIC:
                _reply(self, 401, {"WWW-Authenticate": 'Basic realm="test"'})
            elif self.path.startswith("/v2/repo/blobs/"):
                _reply(self, 302, {"Location": "/same-origin/blob"})
            else:
                _reply(self, 200, {}, BLOB.blob)

    with _Server(SameOrigin) as reg:
        client = RegistryClient(f"127.0.0.1:{reg.port}", RegistryOptions(username=USER, password=PASSWORD))
        with client.open_blob("repo", BLOB.digest, BLOB.size) as f:
            assert f.read() == BLOB.blob
        client.close()
    assert ("GET", "/same-origin/blob", BASIC) in reg.log


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: absolute-form request targets, forwarded to their origin."""

    def _forward(self) -> None:
        url = urlsplit(self.path)
        if not url.scheme or not url.hostname:
            _reply(self, 400, {}, b"not a proxy request")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "connection")}
        conn.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        extra = {k: v for k, v in resp.getheaders() if k.lower() not in ("content-length", "connection",
                                                                         "transfer-encoding")}
        conn.close()
        _reply(self, resp.status, extra, data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


@pytest.fixture
def forward_proxy() -> Iterator[_Server]:
    with _Server(_ForwardProxy) as s:
        yield s


def _clear_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_http_proxy_from_the_environment_carries_the_push_and_pull(
    registry: Registry, repo: str, forward_proxy: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{forward_proxy.port}")
    img = MemImage([MemLayer({"via": b"proxy"})])
    write_registry(img, ref_for(registry.host, repo))
    raw, _mtype, digest = RegistryClient(registry.host).get_manifest(repo, "latest")
    assert (raw, digest) == (img.raw_manifest, img.digest)
    targets = [p for _m, p, _a in forward_proxy.log]
    assert f"http://{registry.host}/v2/{repo}/manifests/latest" in targets
    assert any(t.startswith(f"http://{registry.host}/v2/{repo}/blobs/") for t in targets)


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "example.org, 127.0.0.1"])
def test_no_proxy_hosts_go_direct(
    registry: Registry, repo: str, forward_proxy: _Server, monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    _clear_proxy_env(monkeypatch)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{forward_proxy.port}")
    monkeypatch.setenv("no_proxy", no_proxy)
    img = MemImage([MemLayer({"direct": no_proxy.encode()})])
    write_registry(img, ref_for(registry.host, repo))
    assert RegistryClient(registry.host).get_manifest(repo, "latest")[2] == img.digest
    assert forward_proxy.log == []


def test_a_pull_with_one_job_reuses_one_connection(tmp_path: Path, registry: Registry, repo: str) -> None:
    img = MemImage([MemLayer({f"f{i}": bytes([i]) * 1000}) for i in range(4)])
    write_registry(img, ref_for(registry.host, repo))

    class Counting(_ForwardProxy):
        pass

    with _Server(Counting) as counter:
        # the counting server is a forward proxy: point the client at it through the environment
        env = {"http_proxy": f"http://127.0.0.1:{counter.port}", "no_proxy": ""}
        proc = subprocess.run(
            [sys.executable, "-m", "giropops", "copy", "-q", "--jobs", "1", f"registry://{registry.host}/{repo}",
             f"archive://{tmp_path}/out.tar"],
            capture_output=True, text=True, env={**_base_env(), **env}, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert len([p for m, p, _a in counter.log if m == "GET" and "/blobs/" in p]) == 5  # four layers, a config
    assert counter.connections == 1


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                     "no_proxy")}


def test_a_push_imports_neither_requests_nor_http_client_nor_concurrent_futures_nor_dataclasses(
    tmp_path: Path, registry: Registry, repo: str
) -> None:
    img = MemImage([MemLayer({"lean": b"push"})])
    archive = tmp_path / "img.tar"
    write_image(img, f"archive://{archive}")
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", MODULES_WRAPPER, str(out), "copy", "-q", f"archive://{archive}",
         f"registry://{registry.host}/{repo}:1"],
        capture_output=True, text=True, env={**_base_env(), "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(out.read_text())["modules"])
    assert "giropops.oci.registry.http" in modules  # it did talk to the registry
    assert not {m for m in modules if m.split(".")[0] in ("requests", "urllib3", "email", "concurrent")}
    assert not {"http.client", "encodings.idna"} & modules
    # the registry's value classes are giropops.record records: no dataclasses (inspect, ast, dis...)
    assert not {"dataclasses", "inspect", "ast", "dis", "tokenize"} & modules
    # a plain 'copy SRC DST -q' is parsed without argparse (cli.copy.parse_plain)
    assert not {"argparse", "gettext", "locale"} & modules
    # plain HTTP and the SIGTERM handler on the C modules: socket.py and signal.py only add enums
    assert not {"socket", "signal"} & modules
    assert RegistryClient(registry.host).get_manifest(repo, "1")[2] == img.digest


# -- TLS ---------------------------------------------------------------------------------------------


class _V2(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        _reply(self, 200, {"Content-Type": "application/json"}, b"{}")


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "giropops test registry")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    import ssl

    cert, key = _self_signed(tmp_path)
    server = _Server(_V2)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.httpd.socket = ctx.wrap_socket(server.httpd.socket, server_side=True)
    with server:
        yield server, cert


def _transport(port: int, verify: bool) -> Transport:
    return Transport(f"127.0.0.1:{port}", f"https://127.0.0.1:{port}", verify, RetryPolicy(attempts=2, backoff=0.01))


def test_tls_is_verified_against_the_ca_bundle_named_in_the_environment(
    tls_server: tuple[_Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    _clear_proxy_env(monkeypatch)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    t = _transport(server.port, verify=True)
    with t.request("GET", "/v2/", "ping") as resp:
        assert (resp.status_code, resp.read(100)) == (200, b"{}")
    t.close()


def test_an_unknown_certificate_fails_at_once_with_one_clear_error(
    tls_server: tuple[_Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _cert = tls_server
    _clear_proxy_env(monkeypatch)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    t = _transport(server.port, verify=True)
    with pytest.raises(RegistryError, match=r"TLS failed .*certificate verify failed.*insecure option"):
        t.request("GET", "/v2/", "ping")
    t.close()
    assert server.log == []  # the handshake failed: no request was sent, and none was retried


def test_insecure_skips_verification(tls_server: tuple[_Server, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    server, _cert = tls_server
    _clear_proxy_env(monkeypatch)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    t = _transport(server.port, verify=False)
    for what in ("ping", "ping again"):
        with t.request("GET", "/v2/", what) as resp:
            assert (resp.status_code, resp.read(100)) == (200, b"{}")
    t.close()
    assert server.connections == 1  # kept alive across both requests, TLS included


# -- hostile answers ---------------------------------------------------------------------------------


class _RawServer:
    """A loopback TCP server that answers every connection with the same raw bytes, then closes."""

    def __init__(self, answer: bytes) -> None:
        import socket

        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def __enter__(self) -> _RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", "longer than"),
        (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
    ],
)
def test_a_malformed_answer_is_one_clear_error_after_bounded_retries(answer: bytes, why: str) -> None:
    with _RawServer(answer) as server:
        t = Transport(f"127.0.0.1:{server.port}", f"http://127.0.0.1:{server.port}", True,
                      RetryPolicy(attempts=2, backoff=0.01))
        with pytest.raises(RegistryError, match="giving up after 2 attempts") as err:
            t.request("GET", "/v2/", "ping")
        t.close()
    assert why in str(err.value) and "\n" not in str(err.value)
    assert server.accepted == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,  # ends 990 bytes short
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + b"x" * 16 + b"\r\n",  # no last chunk
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a chunk size
    ],
)
def test_a_manifest_body_cut_short_is_an_error_not_a_short_document(answer: bytes) -> None:
    with _RawServer(answer) as server:
        client = RegistryClient(f"127.0.0.1:{server.port}", RegistryOptions(retry=RetryPolicy(attempts=1)))
        with pytest.raises(RegistryError, match="connection failed while reading"):
            client.get_manifest("repo", DIGEST)
        client.close()


def test_a_chunked_answer_is_read_whole() -> None:
    doc = b'{"tags":["a","b"],"name":"repo"}'
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (doc[:5], doc[5:20], doc[20:])) + b"0\r\n\r\n"
    with _RawServer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body) as server:
        client = RegistryClient(f"127.0.0.1:{server.port}")
        assert client.list_tags("repo") == ["a", "b"]
        client.close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5000/v2/",
    "http://LocalHost:5000/v2/a/b/blobs/sha256:00?x=1&y=2",
    "https://Registry.Example.com/v2/repo/manifests/1.0",
    "http://127.0.0.1:080/v2/?a=b?c",
    "http://host?q=1",
    "http://host",
    "http://user:pw@host:5000/v2/",
    "http://[::1]:5000/v2/",
    "http://host:5000/v2/#frag",
    "http://host:/v2/",
    "HTTP://host:5000/v2/%41",
])
def test_split_url_reads_as_urlsplit(url: str) -> None:
    """The URL splitter of the HTTP client (a fast path for plain URLs) agrees with ``urllib.parse.urlsplit``."""
    from giropops.oci.registry.http import _split_url

    p = urlsplit(url)
    target = (p.path or "/") + (f"?{p.query}" if p.query else "")
    port = p.port or {"http": 80, "https": 443}[p.scheme.lower()]
    assert _split_url(url) == (p.scheme.lower(), p.netloc.rpartition("@")[2], p.hostname, port, target)


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///v2/", "http://host:99999/v2/", "http://host:ab/v2/"])
def test_split_url_refuses_what_urlsplit_cannot_serve(url: str) -> None:
    from giropops.oci.registry.http import HTTPSetupError, _split_url

    with pytest.raises(HTTPSetupError):
        _split_url(url)
