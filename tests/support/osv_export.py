"""A local stand-in for the public OSV exports: ``<ecosystem>/all.zip`` served over HTTP on 127.0.0.1.

The zips are built in a temporary directory from the JSON-lines files the tests use
(tests/data and the synthetic apk ones),
one ``<id>.json`` member per record, in the directory of every ecosystem the
record names (``Debian:12`` goes to ``Debian/``), as the real exports do.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
import zipfile
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def build_export(sources: Iterable[Path], root: Path, ecosystems: Iterable[str]) -> dict[str, set[str]]:
    """Write ``root/<eco>/all.zip`` for each wanted ecosystem; returns the record ids put in each."""
    wanted = set(ecosystems)
    records: dict[str, dict[str, bytes]] = {eco: {} for eco in wanted}
    for src in sources:
        with gzip.open(src, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                bases = {a["package"]["ecosystem"].split(":", 1)[0] for a in rec.get("affected", [])}
                for base in bases & wanted:
                    records[base][rec["id"]] = line.encode()  # a later file wins, like a newer export
    for eco, recs in records.items():
        (root / eco).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(root / eco / "all.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for rid, data in sorted(recs.items()):
                zf.writestr(f"{rid}.json", data)
    return {eco: set(recs) for eco, recs in records.items()}


class OSVExportServer:
    """Serves ``root`` with ETag / Last-Modified and 304s; can cut a response short to simulate a failure."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent: dict[str, int] = {}  # URL path -> body bytes sent with a 200, summed over requests
        self.truncate: set[str] = set()  # URL paths whose body is cut in half (connection closed)
        self.fail: dict[str, int] = {}  # URL path -> HTTP status to answer instead
        self.delay = 0.0  # seconds to wait before answering (to make concurrent clients overlap)
        self.ignore_conditional = False  # answer 200 with the body even when If-None-Match matches
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, {k: v for k, v in self.headers.items()}))
                if server.delay:
                    time.sleep(server.delay)
                if self.path in server.fail:
                    self.send_error(server.fail[self.path])
                    return
                target = (server.root / self.path.lstrip("/")).resolve()
                if server.root.resolve() not in target.parents or not target.is_file():
                    self.send_error(404)
                    return
                data = target.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
                last_modified = "Wed, 01 Jan 2025 00:00:00 GMT"
                if self.headers.get("If-None-Match") == etag and not server.ignore_conditional:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", last_modified)
                self.end_headers()
                if self.path in server.truncate:
                    server.sent[self.path] = server.sent.get(self.path, 0) + len(data) // 2
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                server.sent[self.path] = server.sent.get(self.path, 0) + len(data)  # counted before the client
                self.wfile.write(data)                                              # can have read it

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
