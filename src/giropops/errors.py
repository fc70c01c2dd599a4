"""Every error the library raises on purpose.

The CLI turns any ``GiropopsError`` into a one-line message on stderr and the
error's ``exit_code``; anything else escaping the library is a bug and shows a
traceback.  Callers tell errors apart by class, never by message.

Hierarchy (each area subclasses its base in its own modules)::

    GiropopsError                      exit 1 unless a subclass says otherwise
    ├── UsageError                     bad arguments the parser could not catch (exit 64)
    ├── ConfigError                    bad configuration file / environment
    ├── ImageReferenceError                image reference or source spec does not parse
    ├── ImageError                     anything wrong with an image or its transport
    │   ├── ManifestError              invalid / oversized / unknown-media-type manifest or config
    │   ├── BlobError                  blob missing, truncated, or content != digest
    │   ├── ArchiveError               tarball or layout that is malformed or hostile
    │   ├── RegistryError              the distribution API said no
    │   │   ├── AuthError              401/403 after the auth flow
    │   │   └── NotFoundError          404 for a manifest, blob or repository
    │   └── DaemonError                Docker/Podman engine API failures
    ├── SBOMError                      SBOM cannot be produced or parsed
    ├── VulnError                      vulnerability database / matching problems
    │   └── DatabaseNotReadyError      missing / empty database: a scan cannot say "clean" (exit 3)
    │       └── EcosystemNotCoveredError  no advisories for an ecosystem the image needs
    ├── SignError                      keys, signatures, attestations
    │   ├── SigningKeyError                  unreadable key, wrong password, unsupported key
    │   └── VerificationError          verification failed (subclasses give the reason)
    └── BuildError                     the image builder failed
"""

from __future__ import annotations


class GiropopsError(Exception):
    """Root of every deliberate error; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class UsageError(GiropopsError):
    exit_code = 64


class ConfigError(GiropopsError):
    pass


class ImageReferenceError(GiropopsError):
    """An image reference or source spec (``archive://...``) does not parse."""


class ImageError(GiropopsError):
    pass


class ManifestError(ImageError):
    pass


class BlobError(ImageError):
    pass


class ArchiveError(ImageError):
    pass


class RegistryError(ImageError):
    pass


class AuthError(RegistryError):
    pass


class NotFoundError(RegistryError):
    pass


class DaemonError(ImageError):
    pass


class SBOMError(GiropopsError):
    pass


class VulnError(GiropopsError):
    pass


class DatabaseNotReadyError(VulnError):
    """The vulnerability database cannot answer a scan: missing, empty, or without advisories for an
    ecosystem the image needs.  A scan against it would say "0 vulnerabilities" and mean "not looked"."""

    exit_code = 3


class EcosystemNotCoveredError(DatabaseNotReadyError):
    """The database has advisories, but none for (some of) the ecosystems of the scanned packages."""


class SignError(GiropopsError):
    pass


class SigningKeyError(SignError):
    pass


class VerificationError(SignError):
    """Verification failed; subclasses name the precise reason and exit code."""

    exit_code = 10


class BuildError(GiropopsError):
    pass


class GiropopsWarning(UserWarning):
    """Something the user should know that does not stop the command (raised with ``warnings.warn``).

    The library never prints; the CLI shows each as one ``giropops: warning:`` line on stderr.
    """


def clip_for_error(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was; for values shown unquoted."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def quote_for_error(value: object, limit: int = 200) -> str:
    """``repr`` of an input value for an error message, cut to about ``limit`` characters.

    Errors quote what the user (or a hostile file) gave; a 1 MB advisory id or reference
    must not come back as a 1 MB error line.  The cut says how much was left out.
    """
    if not isinstance(value, str):
        return clip_for_error(repr(value), limit)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"
