"""Registry authentication: where credentials come from, and the challenge flow that uses them.

Credentials, first match wins:

1. ``RegistryOptions.username`` / ``password`` (the CLI's flags);
2. the environment: ``GIROPOPS_REGISTRY_USERNAME`` and ``GIROPOPS_REGISTRY_PASSWORD`` (for every host);
3. the Docker client configuration ``config.json`` in ``RegistryOptions.docker_config``, else
   ``$DOCKER_CONFIG``, else ``~/.docker``: ``credHelpers[host]``, then ``credsStore``, then ``auths``
   (``auth`` = base64 ``user:password``, or ``username``/``password``, or ``identitytoken``).
   Helpers are run as ``docker-credential-<name> get`` with the server on stdin, as Docker does.

No credentials means anonymous access.  The flow is driven by the ``WWW-Authenticate``
challenge of a 401: ``Basic`` sends the credentials; ``Bearer`` asks the token
``realm`` for a token for the ``service`` and repository ``scope`` (with the credentials
as basic auth, or an identity token as an OAuth2 refresh token) and caches it per scope.
Secrets never appear in an error message.
"""

from __future__ import annotations

import _thread
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

from giropops import jsonio
from giropops.errors import AuthError, ConfigError, GiropopsWarning, clip_for_error, quote_for_error
from giropops.oci.registry.http import HTTP_ERRORS
from giropops.oci.registry.transport import Transport
from giropops.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

ENV_USERNAME = "GIROPOPS_REGISTRY_USERNAME"
ENV_PASSWORD = "GIROPOPS_REGISTRY_PASSWORD"  # noqa: S105 - the variable's name, not a secret
HELPER_TIMEOUT = 30.0
MAX_TOKEN_RESPONSE = 1 << 20
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"


@record
class Credentials:
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None  # OAuth2 refresh token (``identitytoken`` / helper user ``<token>``)
    source: str = ""  # where they came from, for error messages (never the secret itself)

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"Credentials(username={self.username!r}, source={self.source!r})"


ANONYMOUS = Credentials(source="anonymous")


@record
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: Mapping[str, str]


#: One ``name=value`` (or ``name="quoted"``) parameter of a challenge; compiled on first use (``re`` caches it).
_TOKEN68 = r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*,?'


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value: ``Bearer realm="...",service="...",scope="..."`` (RFC 7235)."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not m:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end() :]
        params: dict[str, str] = {}
        while rest:
            pm = re.match(_TOKEN68, rest)
            if not pm:
                break
            # A new scheme starts where a token is not followed by '='.
            key = pm.group(1).lower()
            value = pm.group(3) if pm.group(3) is not None else pm.group(2)
            params[key] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[pm.end() :].lstrip()
        out.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return out


def docker_config_dir(explicit: Path | None) -> Path:
    from pathlib import Path  # credentials are looked up only when a registry asks for them

    if explicit is not None:
        return explicit
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env)
    return Path.home() / ".docker"


def _config_keys(host: str) -> list[str]:
    """The keys Docker may have stored credentials for ``host`` under."""
    if host in DOCKER_HUB_HOSTS:
        return [DOCKER_HUB_CONFIG_KEY, "index.docker.io", "docker.io", "registry-1.docker.io"]
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"http://{host}/v1/"]


def _normalise_key(key: str) -> str:
    k = key.strip()
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix) :]
    return k.split("/", 1)[0]


def load_docker_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read Docker config {path}: {exc.strerror}") from exc
    obj = jsonio.loads(raw, f"Docker config {path}", error=ConfigError)
    if not isinstance(obj, dict):
        raise ConfigError(f"Docker config {path} must be a JSON object")
    return obj


def run_credential_helper(name: str, server: str) -> Credentials | None:
    """``docker-credential-<name> get``; None when the helper knows nothing about ``server``."""
    import shutil  # here: a push without a helper needs neither
    import subprocess

    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"invalid credential helper name {quote_for_error(name)} in Docker config")
    program = f"docker-credential-{name}"
    exe = shutil.which(program)
    if exe is None:
        raise AuthError(f"{server}: credential helper {program} is configured but not found on PATH")
    try:
        proc = subprocess.run(
            [exe, "get"], input=server.encode(), capture_output=True, timeout=HELPER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AuthError(f"{server}: credential helper {program} timed out") from exc
    except OSError as exc:
        raise AuthError(f"{server}: cannot run credential helper {program}: {exc.strerror}") from exc
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        if "credentials not found" in out.lower() or "credentials not found" in proc.stderr.decode(errors="replace"):
            return None
        # The helper's output could echo a secret; report only the status.
        raise AuthError(f"{server}: credential helper {program} failed with exit status {proc.returncode}")
    try:
        obj = jsonio.loads(out, "credential helper output")
    except jsonio.DocumentError as exc:
        raise AuthError(f"{server}: credential helper {program} printed invalid JSON") from exc
    if not isinstance(obj, dict):
        raise AuthError(f"{server}: credential helper {program} printed no JSON object")
    user, secret = obj.get("Username"), obj.get("Secret")
    if not isinstance(user, str) or not isinstance(secret, str):
        raise AuthError(f"{server}: credential helper {program} gave no Username/Secret strings")
    if user == "<token>":
        return Credentials(identity_token=secret, source=f"credential helper {program}")
    return Credentials(user, secret, source=f"credential helper {program}")


def _from_auths_entry(entry: Any, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: entry must be an object")
    ident = entry.get("identitytoken")
    if isinstance(ident, str) and ident:
        return Credentials(identity_token=ident, source=where)
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        import base64  # a Docker config "auth" entry only
        import binascii

        try:
            decoded = base64.b64decode(auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password") from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"{where}: 'auth' is not base64 of user:password")
        return Credentials(user, password, source=where)
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str) and name:
        return Credentials(name, secret, source=where)
    return None


def credentials_from_docker_config(host: str, directory: Path) -> Credentials | None:
    cfg = load_docker_config(directory)
    where = str(directory / "config.json")
    keys = _config_keys(host)
    helpers = cfg.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _normalise_key(key) in {_normalise_key(k) for k in keys} and isinstance(helper, str):
                return run_credential_helper(helper, key)
    auths = cfg.get("auths")
    auths = auths if isinstance(auths, dict) else {}
    store = cfg.get("credsStore")
    if isinstance(store, str) and store:
        # Docker asks the store with the server address as it was logged in to.
        creds = run_credential_helper(store, keys[0])
        if creds is not None:
            return creds
    wanted = {_normalise_key(k) for k in keys}
    for key in keys:  # exact keys first, in Docker's preference order
        if key in auths:
            found = _from_auths_entry(auths[key], f"{where} auths[{quote_for_error(key)}]")
            if found is not None:
                return found
    for key, entry in auths.items():
        if _normalise_key(str(key)) in wanted:
            found = _from_auths_entry(entry, f"{where} auths[{quote_for_error(key)}]")
            if found is not None:
                return found
    return None


def resolve_credentials(
    host: str, username: str | None, password: str | None, docker_config: Path | None
) -> Credentials:
    if username is not None or password is not None:
        if not username or password is None:
            raise ConfigError(f"{host}: both a username and a password are needed")
        return Credentials(username, password, source="options")
    env_user, env_pass = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if env_user or env_pass:
        if not env_user or env_pass is None:
            raise ConfigError(f"{ENV_USERNAME} and {ENV_PASSWORD} must be set together")
        return Credentials(env_user, env_pass, source="environment")
    found = credentials_from_docker_config(host, docker_config_dir(docker_config))
    return found if found is not None else ANONYMOUS


class Authenticator:
    """Holds the credentials and tokens for one registry host; thread-safe."""

    def __init__(self, host: str, creds_loader: Callable[[], Credentials]) -> None:
        self.host = host
        self._load = creds_loader
        self._creds: Credentials | None = None
        self._lock = _thread.allocate_lock()
        self._fetch_lock = _thread.allocate_lock()
        self._basic: str | None = None
        self._tokens: dict[_Scopes, tuple[str, float]] = {}  # scopes asked for -> (header, expiry)

    @property
    def credentials(self) -> Credentials:
        with self._lock:
            if self._creds is None:
                self._creds = self._load()
            return self._creds

    def header_for(self, scopes: tuple[str, ...]) -> str | None:
        """A cached token whose scopes cover ``scopes`` (a pull,push token serves a pull), else basic, else None."""
        want = _scope_map(scopes)
        now = time.monotonic()
        with self._lock:
            for granted, (value, expiry) in self._tokens.items():
                if expiry > now and _covers(granted, want):
                    return value
            return self._basic

    def answer(
        self, header: str | None, scopes: tuple[str, ...], transport: Transport, what: str,
        refused: str | None = None,
    ) -> str:
        """Work out an Authorization value for a 401 with challenge ``header``.

        ``refused`` is the Authorization value the 401 answered (None if none was sent).  Parallel
        uploads meet their first 401 together: one thread fetches the token, the others wait and
        reuse it instead of asking the token server once each.
        """
        if not header:
            raise AuthError(f"{self.host}: {what}: 401 without a WWW-Authenticate challenge")
        challenges = parse_challenges(header)
        for ch in challenges:
            if ch.scheme == "bearer":
                with self._fetch_lock:
                    current = self.header_for(scopes)
                    if current is not None and current != refused and current.startswith("Bearer "):
                        return current
                    return self._bearer(ch, scopes, transport, what)
        for ch in challenges:
            if ch.scheme == "basic":
                creds = self.credentials
                if creds.username is None or creds.password is None:
                    raise AuthError(f"{self.host}: {what}: the registry wants a username and password; none found")
                value = "Basic " + _b64(f"{creds.username}:{creds.password}")
                with self._lock:
                    self._basic = value
                return value
        names = ", ".join(c.scheme for c in challenges) or "none"
        raise AuthError(f"{self.host}: {what}: unsupported authentication scheme(s): {names}")

    def _bearer(self, ch: Challenge, scopes: tuple[str, ...], transport: Transport, what: str) -> str:
        realm = ch.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self.host}: {what}: bearer challenge without a usable realm")
        creds = self.credentials
        has_secret = creds.password is not None or creds.identity_token is not None
        realm_host = (urlsplit(realm).hostname or "").lower()
        if has_secret and realm.startswith("http://") and realm_host != _hostname(transport.base_url):
            # Credentials for this registry would cross the network in clear text to a server that is not
            # the registry: ask that server for an anonymous token instead (pulls of public images work).
            warnings.warn(
                f"{self.host}: not sending credentials to the plain-HTTP token server on another host "
                f"({clip_for_error(realm_host, 100)}); asking it for an anonymous token",
                GiropopsWarning, stacklevel=2,
            )
            creds, has_secret = ANONYMOUS, False
        if realm.startswith("http://") and not transport.base_url.startswith("http://") and has_secret:
            raise AuthError(f"{self.host}: {what}: refusing to send credentials to a plain-HTTP token realm")
        # Ours plus whatever the challenge asks for, merged per resource ("push,pull" == "pull,push").
        extra = tuple(x for x in (ch.params.get("scope") or "").split(" ") if x)
        merged = _scope_map((*scopes, *extra))
        wanted = [f"{resource}:{','.join(sorted(actions))}" for resource, actions in merged.items()]
        service = ch.params.get("service")
        headers: dict[str, str] = {}
        if creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "giropops"}
            if service:
                form["service"] = service
            if wanted:
                form["scope"] = " ".join(wanted)
            body = "&".join(f"{k}={_quote(v)}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = transport.request("POST", realm, f"token for {what}", headers=headers, body=body, stream=True)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params += [("scope", s) for s in wanted]
            if creds.username is not None and creds.password is not None:
                headers["Authorization"] = (
                    "Basic " + _b64(f"{creds.username}:{creds.password}")
                )
                params.append(("account", creds.username))
            resp = transport.request("GET", realm, f"token for {what}", headers=headers, params=params, stream=True)
        with resp:
            if resp.status_code in (401, 403):
                who = f"as {quote_for_error(creds.username)} ({creds.source})" if creds.username else "anonymously"
                raise AuthError(f"{self.host}: {what}: token server refused access {who}")
            if resp.status_code != 200:
                raise AuthError(f"{self.host}: {what}: token server answered HTTP {resp.status_code}")
            try:
                raw = resp.read(MAX_TOKEN_RESPONSE + 1)
            except HTTP_ERRORS as exc:
                if transport.deadline_passed():
                    raise transport.deadline_error(f"token for {what}") from None
                raise AuthError(f"{self.host}: {what}: the token server's answer broke off") from exc
            if transport.deadline_passed():
                raise transport.deadline_error(f"token for {what}")
            if len(raw) > MAX_TOKEN_RESPONSE:
                raise AuthError(f"{self.host}: {what}: token response is too large")
        obj = jsonio.loads(raw, f"{self.host}: {what}: token response", error=AuthError)
        token = obj.get("token") or obj.get("access_token") if isinstance(obj, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: {what}: token response has no token")
        expires = obj.get("expires_in")
        lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else 60.0
        value = f"Bearer {token}"
        with self._lock:
            # Renew a little early so a request does not race the expiry.
            self._tokens[_freeze(merged)] = (value, time.monotonic() + max(lifetime - 10, lifetime / 2))
        return value


_Scopes = frozenset[tuple[str, frozenset[str]]]


def _scope_map(scopes: tuple[str, ...]) -> dict[str, set[str]]:
    """``repository:a/b:pull,push`` -> {"repository:a/b": {"pull", "push"}} (the resource name may hold colons)."""
    out: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        out.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    return out


def _freeze(m: dict[str, set[str]]) -> _Scopes:
    return frozenset((k, frozenset(v)) for k, v in m.items())


def _covers(granted: _Scopes, want: dict[str, set[str]]) -> bool:
    have = dict(granted)
    return all(resource in have and actions <= have[resource] for resource, actions in want.items())


def _b64(text: str) -> str:
    """Base64 of the UTF-8 text (``binascii``: the ``base64`` module is not worth its import here; imported
    here, when credentials are sent, not by every anonymous push)."""
    import binascii

    return binascii.b2a_base64(text.encode(), newline=False).decode()


def _hostname(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _quote(v: str) -> str:
    return quote(v, safe="")
