"""Errors of the builder; all derive from ``BuildError`` so the CLI reports them in one line."""

from __future__ import annotations

from giropops.errors import BuildError

__all__ = [
    "BuildError", "IntegrityError", "PackageError", "RepositoryError", "ResolveError", "SignatureError", "SpecError",
]


class SpecError(BuildError):
    """The build spec is invalid; the message names the offending key."""

    exit_code = 64


class RepositoryError(BuildError):
    """A package repository could not be read (network, missing index, malformed index)."""


class IntegrityError(RepositoryError):
    """A download does not match the checksum its signed index promises."""


class SignatureError(RepositoryError):
    """A repository index signature is missing, invalid, or made by an untrusted key."""


class ResolveError(BuildError):
    """Package dependencies cannot be satisfied."""


class PackageError(BuildError):
    """A package archive is malformed or hostile (bad ar/tar, escaping paths)."""
