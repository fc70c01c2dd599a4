"""A loopback registry that lies about one layer: its size, or how much of it there is, or how fast it comes.

It serves the distribution API's read side for one image (``/v2/``, the
manifest, the config, one layer blob) from memory.  The manifest's layer
descriptor declares ``declared_size`` bytes; what the blob GET then sends
depends on ``mode``:

* ``endless``: zeros as fast as the client takes them, with no Content-Length,
  until the client hangs up;
* ``slow``: ``Content-Length: declared_size``, then 16 KiB every 50 ms.

``sent`` counts the layer bytes written, ``log`` the requests.  The server
stops (and every handler with it) when the context manager exits.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.faultproxy import QuietServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class HostileRegistry:
    def __init__(self, declared_size: int, mode: str) -> None:
        self.mode = mode
        self.sent = 0
        self.log: list[str] = []
        self._stop = threading.Event()
        self.layer_digest = "sha256:" + hashlib.sha256(b"a layer nobody will ever finish").hexdigest()
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "ab" * 32]},
        }).encode()
        self.config_digest = "sha256:" + hashlib.sha256(self.config).hexdigest()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.config_digest, "size": len(self.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self.layer_digest, "size": declared_size}],
        }).encode()
        self.manifest_digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
        self.declared_size = declared_size
        self._server = QuietServer(("127.0.0.1", 0), self._handler())

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileRegistry:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _small(self, body: bytes, ctype: str, digest: str | None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                reg.log.append(f"{self.command} {self.path}")
                if self.path == "/v2/":
                    self._small(b"{}", "application/json", None)
                elif "/manifests/" in self.path:
                    self._small(reg.manifest, OCI_MANIFEST, reg.manifest_digest)
                elif self.path.endswith(f"/blobs/{reg.config_digest}"):
                    self._small(reg.config, "application/octet-stream", reg.config_digest)
                elif self.path.endswith(f"/blobs/{reg.layer_digest}"):
                    self._layer()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _layer(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if reg.mode == "slow":
                    self.send_header("Content-Length", str(reg.declared_size))
                self.end_headers()
                chunk = b"\0" * (16 << 10 if reg.mode == "slow" else 1 << 20)
                while not reg._stop.is_set():
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        return  # the client hung up
                    reg.sent += len(chunk)
                    if reg.mode == "slow":
                        time.sleep(0.05)
                self.close_connection = True

        return Handler
