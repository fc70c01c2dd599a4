"""What a fleet scan covers: registries, repositories, single references, files of references.

``TARGET`` forms (positional, repeatable):

* ``HOST`` (``registry.example:5000``): every repository of the registry (the catalog API,
  ``/v2/_catalog``, followed through its ``Link`` pages), filtered by ``--repository REGEX``;
* ``HOST/REPO``: every tag of that repository (the tags-list API, paginated), filtered by ``--tag REGEX``;
* ``HOST/REPO:TAG`` or ``HOST/REPO@DIGEST`` (or ``registry://...``): that one image.

``--shard K/N`` keeps the images whose manifest digest hashes to K (0 <= K < N): the hash is
SHA-256 of the digest string, so every runner, on any machine, agrees on each image's share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from giropops.errors import ImageReferenceError, UsageError
from giropops.oci.reference import Reference
from giropops.oci.registry.client import RegistryClient

MAX_FILE_BYTES = 16 * 1024 * 1024
#: Tags cosign and the OCI referrers fallback write beside an image (signatures, attestations, SBOMs):
#: they are not images of the fleet, so listing a repository skips them.
_ATTACHED_TAG_RE = re.compile(r"^sha256-[0-9a-f]{64}(?:\.(?:sig|att|sbom))?$")
_HOST_RE = re.compile(r"^(?:localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        if not sep or not k.isdigit() or not n.isdigit() or int(n) < 1 or int(k) >= int(n):
            raise UsageError(f"invalid shard {text[:50]!r}: expected K/N with 0 <= K < N (e.g. 0/4)")
        return cls(int(k), int(n))

    def owns(self, digest: str) -> bool:
        h = int.from_bytes(hashlib.sha256(digest.encode("ascii")).digest()[:8], "big")
        return h % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Target:
    """One thing a user named: a whole registry, a repository (all tags) or one reference."""

    host: str
    repository: str | None = None  # path inside the registry
    reference: str | None = None  # tag or digest


def parse_target(text: str) -> Target:
    spec = text.removeprefix("registry://")
    if "/" not in spec:
        if not _HOST_RE.match(spec) or not ("." in spec or ":" in spec or spec == "localhost"):
            raise ImageReferenceError(f"invalid scan target {text[:100]!r}: expected a registry host (HOST[:PORT]),"
                                  " HOST/REPO or HOST/REPO:TAG")
        return Target(spec)
    ref = Reference.parse(spec)
    host = ref.registry_host
    tail = spec.rsplit("/", 1)[1]
    if "@" in spec or ":" in tail:
        return Target(host, ref.path, ref.identifier)
    return Target(host, ref.path)


def targets_from_file(path: Path) -> list[Target]:
    """One target per non-empty line; ``#`` starts a comment."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{path}: more than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            out.append(parse_target(item))
        except ImageReferenceError as exc:
            raise UsageError(f"{path}:{number}: {exc}") from None
    return out


def list_repositories(client: RegistryClient, page_size: int | None = None) -> list[str]:
    """Every repository of the registry through the catalog API, following ``Link: <...>; rel="next"``."""
    return client.list_repositories(page_size)


@dataclass(frozen=True)
class Wanted:
    """One reference to resolve: repository path and tag (or digest) on a host."""

    host: str
    repository: str
    reference: str


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"invalid {what} regular expression {pattern[:100]!r}: {exc}") from None


def expand(
    targets: Iterable[Target],
    client_for: Callable[[str], RegistryClient],
    repository_re: str | None = None,
    tag_re: str | None = None,
    page_size: int | None = None,
) -> list[Wanted]:
    """Every (host, repository, tag) the targets cover, filters applied, each once, in a stable order.

    ``client_for`` gives the (shared) client of a host, so connections are reused.
    """
    repo_pat = _compile(repository_re, "--repository")
    tag_pat = _compile(tag_re, "--tag")
    out: dict[tuple[str, str, str], None] = {}
    for t in targets:
        client = client_for(t.host)
        if t.repository is None:
            repos = [r for r in list_repositories(client, page_size) if repo_pat is None or repo_pat.search(r)]
        elif t.reference is None:
            repos = [t.repository] if repo_pat is None or repo_pat.search(t.repository) else []
        else:
            out[(t.host, t.repository, t.reference)] = None
            continue
        for repo in repos:
            for tag in client.list_tags(repo, page_size):
                if _ATTACHED_TAG_RE.match(tag):
                    continue
                if tag_pat is None or tag_pat.search(tag):
                    out[(t.host, repo, tag)] = None
    return [Wanted(h, r, ref) for h, r, ref in out]
