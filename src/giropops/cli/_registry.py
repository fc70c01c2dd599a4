"""The registry flags every command that may talk to a registry takes (``main`` adds them, beside
``--timeout``), and the ``TransportOptions`` they make."""

from __future__ import annotations

import sys

from giropops.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:  # the registry client is imported by the commands that use it, not by every --help
    import argparse

    from giropops.oci.transport import TransportOptions


def add_registry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--insecure", "--allow-insecure-registry", dest="insecure", action="store_true",
                   help="allow plain HTTP and unverified TLS for non-loopback registries")
    p.add_argument("--username", default=None,
                   help="registry user name (default: $GIROPOPS_REGISTRY_USERNAME, else the docker config)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the registry password from stdin (default: $GIROPOPS_REGISTRY_PASSWORD)")


def transport_options(args: argparse.Namespace, name: str | None = None) -> TransportOptions:
    """The options of ``add_registry_options`` (the password read from stdin once per call)."""
    password = None
    if getattr(args, "password_stdin", False):
        if not getattr(args, "username", None):
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
    from giropops.oci.transport import TransportOptions

    return TransportOptions(
        insecure=bool(getattr(args, "insecure", False)),
        username=getattr(args, "username", None),
        password=password,
        chunk_size=getattr(args, "chunk_size", None),
        name=name,
    )
