"""Images from a local Docker or Podman engine (``local://NAME``), through the Engine API socket.

Only unix sockets are supported (``DOCKER_HOST=unix:///path``, default
``/var/run/docker.sock``).  ``GET /images/{name}/json`` tells whether the image
exists (and gives a clear error when not); ``GET /images/{name}/get`` streams a
``docker save`` tarball into an anonymous temporary file that ``archive.py``
then reads lazily.  Read-only: loading images into an engine is the engine's job.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import urllib.parse
from pathlib import Path

from giropops import jsonio
from giropops.errors import DaemonError, quote_for_error
from giropops.oci.archive import Archive
from giropops.oci.image import Image, ImageIndex

DEFAULT_SOCKET = "/var/run/docker.sock"
_CHUNK = 1 << 20
_TIMEOUT = 300.0


def socket_path(docker_host: str | None = None) -> str:
    host = docker_host if docker_host is not None else os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if not path:
            raise DaemonError(f"DOCKER_HOST {quote_for_error(host)} names no socket path")
        return path
    raise DaemonError(f"DOCKER_HOST {quote_for_error(host)} is not supported: only unix:// sockets are")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = _TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError as exc:
            sock.close()
            raise DaemonError(f"cannot connect to the engine at unix://{self._path}: {exc.strerror or exc}") from exc
        self.sock = sock


def _api_error(resp: http.client.HTTPResponse, what: str) -> DaemonError:
    body = resp.read(64 * 1024)
    msg = ""
    try:
        doc = jsonio.loads(body, "engine error")
        if isinstance(doc, dict) and isinstance(doc.get("message"), str):
            msg = doc["message"][:300]
    except jsonio.DocumentError:
        msg = body.decode("utf-8", "replace").strip()[:300]
    return DaemonError(f"{what}: engine answered {resp.status} {resp.reason}" + (f": {msg}" if msg else ""))


class Engine:
    """A Docker Engine API endpoint on a unix socket."""

    def __init__(self, docker_host: str | None = None) -> None:
        self.path = socket_path(docker_host)

    def _request(self, path: str) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        conn = _UnixConnection(self.path)
        try:
            conn.request("GET", path, headers={"Host": "docker"})
            return conn, conn.getresponse()
        except DaemonError:
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise DaemonError(f"engine at unix://{self.path}: {exc}") from exc

    def inspect(self, name: str) -> dict[str, object]:
        conn, resp = self._request(f"/images/{_quote(name)}/json")
        try:
            if resp.status == 404:
                resp.read()
                raise DaemonError(f"no image {quote_for_error(name)} in the engine at unix://{self.path}")
            if resp.status != 200:
                raise _api_error(resp, f"inspecting {quote_for_error(name)}")
            body = resp.read(16 * 1024 * 1024)
            doc = jsonio.loads(body, f"the engine's answer for {quote_for_error(name)}", error=DaemonError)
            if not isinstance(doc, dict):
                raise DaemonError(f"engine sent an unexpected answer for {quote_for_error(name)}")
            return doc
        finally:
            conn.close()

    def save(self, name: str) -> Archive:
        """``docker save NAME`` into an anonymous temporary file, opened as an archive."""
        self.inspect(name)
        conn, resp = self._request(f"/images/{_quote(name)}/get")
        tmp = tempfile.TemporaryFile()
        try:
            if resp.status != 200:
                raise _api_error(resp, f"exporting {quote_for_error(name)}")
            try:
                while chunk := resp.read(_CHUNK):
                    tmp.write(chunk)
            except (OSError, http.client.HTTPException) as exc:
                raise DaemonError(f"export of {quote_for_error(name)} was interrupted: {exc}") from exc
            tmp.flush()
            return Archive(Path(f"local:{name}"), file=tmp, label=f"local://{name}")
        except BaseException:
            tmp.close()
            raise
        finally:
            conn.close()


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="/:@")


def open_local(name: str, docker_host: str | None = None) -> Image | ImageIndex:
    """The image ``name`` of the local engine (one image: an engine stores one platform per name)."""
    return Engine(docker_host).save(name).select(None, None)
