"""Image references with Docker's grammar and defaults.

``redis`` means ``docker.io/library/redis:latest``; the first path component is
a registry host only if it contains ``.`` or ``:`` or is ``localhost`` (Docker's
rule).  A reference may carry both a tag and a digest; the digest wins when
pulling, the tag is kept for display.
"""

from __future__ import annotations

import re

from giropops.errors import ImageReferenceError, ManifestError, quote_for_error
from giropops.oci.model import Digest
from giropops.record import record

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"

# Patterns, compiled (and cached by ``re``) when a reference is first parsed: a cold ``giropops sbom`` of an
# archive parses none, and compiling them was most of this module's import.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = rf"^{_COMPONENT}(?:/{_COMPONENT})*$"
_TAG = r"^[\w][\w.-]{0,127}$"
_DOMAIN = (
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
MAX_NAME_LEN = 255


@record
class Reference:
    """An image reference: registry domain, repository path, and a tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not isinstance(text, str) or not text or text != text.strip():
            raise ImageReferenceError(f"invalid image reference {quote_for_error(text)}: empty or surrounded by spaces")
        rest = text
        digest: Digest | None = None
        if "@" in rest:
            rest, _, dig = rest.partition("@")
            try:
                digest = Digest.parse(dig)
            except ManifestError as exc:
                raise ImageReferenceError(f"invalid image reference {quote_for_error(text)}: {exc}") from exc
        tag: str | None = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not re.match(_TAG, tag):
                raise ImageReferenceError(f"invalid image reference {quote_for_error(text)}: bad tag "
                                      f"{quote_for_error(tag)}")
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            domain, path = first, remainder
            if not re.match(_DOMAIN, domain):
                raise ImageReferenceError(f"invalid image reference {quote_for_error(text)}: bad registry host "
                                      f"{quote_for_error(domain)}")
        else:
            domain, path = DEFAULT_DOMAIN, rest
        if domain == LEGACY_DEFAULT_DOMAIN:
            domain = DEFAULT_DOMAIN
        if domain == DEFAULT_DOMAIN and "/" not in path:
            path = f"library/{path}"
        if not re.match(_PATH, path):
            raise ImageReferenceError(
                f"invalid image reference {quote_for_error(text)}: repository {quote_for_error(path)} must be "
                f"lowercase "
                "letters, digits and separators"
            )
        if len(domain) + 1 + len(path) > MAX_NAME_LEN:
            raise ImageReferenceError(
                f"invalid image reference {quote_for_error(text)}: name longer than {MAX_NAME_LEN}")
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest)

    @property
    def repository(self) -> str:
        """``domain/path`` — what ``docker images`` shows as REPOSITORY."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """Host[:port] to talk to for the distribution API."""
        return DOCKER_HUB_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest if known, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def is_loopback(self) -> bool:
        host = self.domain
        if host.startswith("["):
            host = host[1 : host.index("]")]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if host == "localhost":
            return True
        import ipaddress  # only registry commands ask: not imported on every start-up

        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def with_tag(self, tag: str) -> Reference:
        if not re.match(_TAG, tag):
            raise ImageReferenceError(f"invalid tag {quote_for_error(tag)}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.domain, self.path, self.tag, digest)

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """Short form as Docker prints it (``redis:latest``, ``user/app:1``)."""
        name = self.repository
        if self.domain == DEFAULT_DOMAIN:
            name = self.path.removeprefix("library/")
        out = name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
