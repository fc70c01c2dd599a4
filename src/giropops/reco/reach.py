"""Registry hosts that did not answer during one run.

Each unreachable host costs the registry client its whole retry budget (seconds); a catalog
lists several images per host, so after the first failure the others on that host are
skipped with a note instead of being tried again.
"""

from __future__ import annotations

from giropops.errors import AuthError, GiropopsError, NotFoundError, RegistryError
from giropops.oci.transport import RegistrySpec, Spec


class Unreachable:
    def __init__(self) -> None:
        self.hosts: set[str] = set()

    def host_of(self, spec: Spec) -> str | None:
        return spec.ref.registry_host if isinstance(spec, RegistrySpec) else None

    def skipped(self, spec: Spec, name: str) -> str | None:
        """A note when ``spec`` is on a host that already failed, else None (go ahead)."""
        host = self.host_of(spec)
        if host is not None and host in self.hosts:
            return f"candidate {name} skipped: {host} did not answer earlier in this run"
        return None

    def record(self, spec: Spec, exc: GiropopsError) -> None:
        """Remember the host when the error says it could not be reached (not a 404 or a refusal)."""
        host = self.host_of(spec)
        if host is not None and isinstance(exc, RegistryError) and not isinstance(exc, NotFoundError | AuthError):
            self.hosts.add(host)
