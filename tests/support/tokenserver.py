"""A small bearer-token endpoint, as Docker Hub's auth.docker.io does it, for distribution's ``auth: token``.

It issues RS256 JWTs carrying the ``access`` claim distribution checks, signed by a
fresh RSA key whose self-signed certificate travels in the ``x5c`` header and is the
registry's ``rootcertbundle``.  Basic credentials are checked against ``users``; a
user gets every action asked for on every repository in ``grants`` (all when None);
anonymous callers get ``pull`` on the repositories in ``anonymous_pull``.  ``POST /token``
with ``grant_type=refresh_token`` (Docker's identity tokens) answers with an ``access_token``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.faultproxy import QuietServer


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(
        self,
        workdir: Path,
        users: dict[str, str],
        service: str = "test-registry",
        issuer: str = "giropops-test-issuer",
        anonymous_pull: frozenset[str] = frozenset(),
        refresh_tokens: dict[str, str] | None = None,
    ) -> None:
        self.users = users
        self.refresh_tokens = dict(refresh_tokens or {})  # OAuth2 refresh token -> account
        self.service = service
        self.issuer = issuer
        self.anonymous_pull = anonymous_pull
        self.requests: list[dict[str, object]] = []  # what was asked: account, scopes, granted
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "giropops test token signer")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = workdir / "token-signer.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def issue(self, account: str, access: list[dict[str, object]]) -> str:
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 30,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(sig)}"

    def _grant(self, account: str | None, scope: str) -> dict[str, object] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            return None
        asked = [a for a in actions.split(",") if a]
        if account is None:
            allowed = [a for a in asked if a == "pull" and name in self.anonymous_pull]
        else:
            allowed = asked
        return {"type": "repository", "name": name, "actions": allowed}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._reply(404, b"{}")
                    return
                query = parse_qs(url.query)
                account: str | None = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    try:
                        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    except ValueError:
                        user, pw = "", ""
                    if server.users.get(user) != pw or not user:
                        server.requests.append({"account": user, "scopes": query.get("scope", []), "ok": False})
                        self._reply(401, b'{"details":"bad credentials"}', {"WWW-Authenticate": 'Basic realm="t"'})
                        return
                    account = user
                if query.get("service") != [server.service]:
                    self._reply(400, b'{"details":"wrong service"}')
                    return
                access = [g for s in query.get("scope", []) if (g := server._grant(account, s)) is not None]
                server.requests.append({"account": account, "scopes": query.get("scope", []), "ok": True})
                token = server.issue(account or "", access)
                self._reply(200, json.dumps({"token": token, "expires_in": 300}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                account = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
                scopes = " ".join(form.get("scope", [])).split()
                ok = form.get("grant_type") == ["refresh_token"] and account is not None
                server.requests.append({"account": account, "scopes": scopes, "ok": ok, "grant": "refresh_token"})
                if not ok or form.get("service") != [server.service]:
                    self._reply(401, b'{"details":"invalid refresh token"}')
                    return
                access = [g for s in scopes if (g := server._grant(account, s)) is not None]
                token = server.issue(account or "", access)
                self._reply(200, json.dumps({"access_token": token, "expires_in": 300}).encode())

        return Handler
