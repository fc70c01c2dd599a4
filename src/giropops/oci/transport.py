"""Source/destination specs (Docker Scout's prefixes) and the dispatcher that opens and writes them.

Grammar::

    REF | registry://REF        an image in a registry (Docker reference grammar)
    archive://FILE[:NAME]       docker-archive / OCI archive tarball
    archive://FILE@DIGEST
    oci-dir://DIR[:NAME]        OCI image layout directory
    oci-dir://DIR@DIGEST
    fs://DIR                    a root filesystem directory, read as a one-layer image (read-only)
    sbom://FILE                 an SBOM document (SPDX, CycloneDX or ours): a source for the SBOM side
                                (``giropops.sbom.sbom_for``), not an image — opening it as one is an error
    local://NAME                an image in a local Docker/Podman engine (read-only)

``FILE``/``DIR`` end at the first ``:`` — unless the whole text names an existing
file or directory, which then wins (so an existing ``a:b.tar`` still opens).
``NAME`` picks an image inside a layout (its ``org.opencontainers.image.ref.name``)
or an archive (a ``RepoTags`` entry or ref name); when writing it is the name
recorded.  ``DIGEST`` picks a manifest or index by digest (reading only).
"""

from __future__ import annotations

import errno
import os
import re

from giropops.errors import ImageError, ImageReferenceError, quote_for_error
from giropops.oci.image import Image, ImageIndex
from giropops.oci.memory import select_image
from giropops.oci.model import Digest, Platform
from giropops.progress import NO_PROGRESS, Progress
from giropops.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

    from giropops.oci.reference import Reference
    from giropops.oci.registry import RegistryOptions

SCHEMES = ("registry", "archive", "oci-dir", "fs", "local", "sbom")
# compiled (and cached by re) when a spec first has an '@': most specs do not
_DIGEST_SUFFIX = r"@((?:sha256:[a-f0-9]{64})|(?:sha512:[a-f0-9]{128}))$"


@record
class RegistrySpec:
    """``registry://REF`` (or a bare reference): an image in a registry."""

    ref: Reference

    def __str__(self) -> str:
        return f"registry://{self.ref}"


@record
class ArchiveSpec:
    """``archive://FILE``: a docker or OCI archive tarball."""

    path: Path
    name: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        return f"archive://{_path_text(self.path, self.name, self.digest)}"


@record
class OCIDirSpec:
    """``oci-dir://DIR[:NAME]``: an OCI image layout directory."""

    path: Path
    name: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        return f"oci-dir://{_path_text(self.path, self.name, self.digest)}"


@record
class FSSpec:
    """``fs://DIR``: a plain directory, as a one-layer image."""

    path: Path

    def __str__(self) -> str:
        return f"fs://{self.path}"


@record
class SBOMFileSpec:
    """``sbom://FILE``: an SBOM document standing in for an image (read by ``giropops.sbom``)."""

    path: Path

    def __str__(self) -> str:
        return f"sbom://{self.path}"


@record
class LocalSpec:
    """``local://REF``: an image of the local container engine."""

    name: str

    def __str__(self) -> str:
        return f"local://{self.name}"


Spec = RegistrySpec | ArchiveSpec | OCIDirSpec | FSSpec | LocalSpec | SBOMFileSpec
# Sources that are no image: the SBOM side reads them itself (``fs://`` in place, ``sbom://`` decoded).
NO_IMAGE = (FSSpec, SBOMFileSpec)


def _path_text(path: Path, name: str | None, digest: Digest | None) -> str:
    out = str(path)
    if name:
        out += f":{name}"
    if digest:
        out += f"@{digest}"
    return out


@record
class TransportOptions:
    """Everything a transport may need; each one reads only its own fields."""

    insecure: bool = False  # registry: plain HTTP / unverified TLS for non-loopback hosts
    username: str | None = None
    password: str | None = None
    docker_config: Path | None = None
    chunk_size: int | None = None
    docker_host: str | None = None  # local://: default $DOCKER_HOST, then /var/run/docker.sock
    name: str | None = None  # name recorded in an archive/layout when the destination spec gives none
    preserve_digests: bool = False  # registry push: uncompressed layers go up as they are (no gzip, same digest)
    jobs: int = 4  # blobs transferred at once when writing (``giropops.oci.copypool.DEFAULT_JOBS``)


def _as_path(text: str) -> str:
    """``str(Path(text))`` (POSIX), without pathlib: repeated slashes and ``.`` parts dropped, a trailing slash
    too; ``..`` kept; exactly two leading slashes kept; ``.`` for nothing left."""
    root = "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    return root + "/".join(p for p in text.split("/") if p and p != ".") or "."


def _exists(text: str) -> bool:
    """``Path(text).exists()``: False when ``text`` is missing or cannot be (a file in its parents, a link
    loop, a NUL), else an ``OSError`` (no permission) as pathlib raises it."""
    try:
        os.stat(_as_path(text))
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            raise
        return False
    except ValueError:
        return False
    return True


def _split_text(text: str, scheme: str, original: str) -> tuple[str, str | None, Digest | None]:
    """``FILE``/``DIR`` (as ``str(Path(FILE))``), ``NAME`` and ``DIGEST`` of an ``archive://``/``oci-dir://`` spec."""
    if not text:
        raise ImageReferenceError(f"{quote_for_error(original)}: {scheme}:// needs a path")
    digest: Digest | None = None
    m = re.search(_DIGEST_SUFFIX, text) if "@" in text else None
    if m:
        digest = Digest.parse(m.group(1))
        text = text[: m.start()]
    name: str | None = None
    if not _exists(text) and ":" in text:
        text, _, name = text.partition(":")
        name = name or None
    if not text:
        raise ImageReferenceError(f"{quote_for_error(original)}: {scheme}:// needs a path before ':'")
    if name is not None and digest is not None:
        raise ImageReferenceError(f"{quote_for_error(original)}: give a name or a digest, not both")
    if name is not None and ("\n" in name or "\x00" in name):
        raise ImageReferenceError(f"{quote_for_error(original)}: invalid name")
    return _as_path(text), name, digest


def _split_path(text: str, scheme: str, original: str) -> tuple[Path, str | None, Digest | None]:
    from pathlib import Path

    path, name, digest = _split_text(text, scheme, original)
    return Path(path), name, digest


class BarePathError(ImageReferenceError):
    """A path on disk given without its scheme: a usage error that says which scheme was meant."""

    exit_code = 64


def _refuse_bare_path(text: str) -> None:
    """``./x.tar`` (or a directory) that exists is not a registry reference: say which scheme was meant.

    A bare word that happens to name a directory here (``alpine``) stays a reference unless it cannot
    be one; a path-looking spec (``/``, ``./``, ``../``, ``~``) or one that does not parse as a
    reference is checked on disk."""
    from pathlib import Path

    from giropops.oci.reference import Reference

    looks_like_path = text.startswith(("/", "./", "../", "~")) or text.endswith((".tar", ".tar.gz", ".tgz"))
    if not looks_like_path:
        try:
            Reference.parse(text)
            return
        except ImageReferenceError:
            pass
    path = Path(text).expanduser()
    try:
        if path.is_dir():
            scheme = "oci-dir" if (path / "oci-layout").is_file() else "fs"
        elif path.exists():
            scheme = "archive"
        else:
            return
    except OSError:
        return
    what = "an OCI layout" if scheme == "oci-dir" else ("a directory" if scheme == "fs" else "a file")
    raise BarePathError(f"{text!r} is {what}, not an image reference: did you mean '{scheme}://{text}'?")


def parse_spec(text: str) -> Spec:
    """Parse a source/destination spec; an unknown scheme or malformed spec raises ``ImageReferenceError``."""
    from giropops.oci.reference import Reference  # registry specs only: an archive:// text needs none of it

    if not isinstance(text, str) or not text.strip():
        raise ImageReferenceError("empty image spec")
    if "://" not in text:
        _refuse_bare_path(text)
        return RegistrySpec(Reference.parse(text))
    scheme, _, rest = text.partition("://")
    if scheme not in SCHEMES:
        raise ImageReferenceError(f"unknown scheme {scheme + '://'!r} in {quote_for_error(text)} (known: "
                              f"{', '.join(SCHEMES)})")
    if scheme == "registry":
        return RegistrySpec(Reference.parse(rest))
    if scheme in ("archive", "oci-dir"):
        path, name, digest = _split_path(rest, scheme, text)
        return ArchiveSpec(path, name, digest) if scheme == "archive" else OCIDirSpec(path, name, digest)
    from pathlib import Path

    if scheme == "fs":
        if not rest:
            raise ImageReferenceError(f"{quote_for_error(text)}: fs:// needs a directory")
        return FSSpec(Path(rest))
    if scheme == "sbom":
        if not rest:
            raise ImageReferenceError(f"{quote_for_error(text)}: sbom:// needs a file")
        return SBOMFileSpec(Path(rest))
    if not rest or rest != rest.strip() or "\x00" in rest:
        raise ImageReferenceError(f"{quote_for_error(text)}: local:// needs an image name")
    return LocalSpec(rest)


def as_spec(spec: Spec | str) -> Spec:
    return parse_spec(spec) if isinstance(spec, str) else spec


def _no_image(s: SBOMFileSpec) -> ImageReferenceError:
    return ImageReferenceError(f"{s}: an SBOM document is not an image (only the SBOM and vulnerability commands "
                           "read sbom://)")


def registry_options(options: TransportOptions) -> RegistryOptions:
    """The registry client's options from the transport's: the one place they are converted."""
    from giropops.oci.registry import RegistryOptions

    return RegistryOptions(
        insecure=options.insecure,
        username=options.username,
        password=options.password,
        docker_config=options.docker_config,
        chunk_size=options.chunk_size,
    )


def open_any(
    spec: Spec | str, options: TransportOptions = TransportOptions(), platform: Platform | None = None
) -> Image | ImageIndex:
    """The image or index a spec names (``platform`` is only a hint some transports use)."""
    if isinstance(spec, str) and spec.startswith("archive://"):
        # read as parse_spec reads it, without making a Path of it: a cold 'giropops sbom archive://...'
        # imports nothing of pathlib
        from giropops.oci.archive import open_archive

        return open_archive(*_split_text(spec[len("archive://") :], "archive", spec))
    s = as_spec(spec)
    if isinstance(s, RegistrySpec):
        # imported here: only registry:// needs the HTTP stack
        from giropops.oci.registry import open_registry

        return open_registry(s.ref, registry_options(options), platform=platform)
    if isinstance(s, ArchiveSpec):
        from giropops.oci.archive import open_archive

        return open_archive(s.path, s.name, s.digest)
    if isinstance(s, OCIDirSpec):
        from giropops.oci.layout import open_layout

        return open_layout(s.path, s.name, s.digest)
    if isinstance(s, FSSpec):
        from giropops.oci.fs import open_fs

        return open_fs(s.path, platform=platform)
    if isinstance(s, SBOMFileSpec):
        raise _no_image(s)
    from giropops.oci.daemon import open_local

    return open_local(s.name, docker_host=options.docker_host)


def open_image(
    spec: Spec | str, platform: Platform | None = None, options: TransportOptions = TransportOptions()
) -> Image:
    """One image: an index is resolved for ``platform`` (default: this machine's)."""
    return select_image(open_any(spec, options, platform=platform), platform)


def write_image(
    obj: Image | ImageIndex,
    spec: Spec | str,
    options: TransportOptions = TransportOptions(),
    progress: Progress = NO_PROGRESS,
) -> Digest:
    """Write an image or index to a destination; returns the digest of what was written."""
    s = as_spec(spec)
    if isinstance(s, RegistrySpec):
        from giropops.oci.registry import write_registry
        from giropops.oci.registry.blobinfo import BlobInfoCache

        with BlobInfoCache.default() as cache:
            return write_registry(
                obj, s.ref, registry_options(options), progress=progress,
                blob_cache=cache, compress=not options.preserve_digests, jobs=options.jobs,
            )
    if isinstance(s, ArchiveSpec | OCIDirSpec):
        if s.digest is not None:
            raise ImageReferenceError(f"{s}: a destination cannot name a digest")
        name = s.name or options.name
        if isinstance(s, ArchiveSpec):
            from giropops.oci.archive import write_archive

            return write_archive(obj, s.path, name, progress, options.jobs).digest
        from giropops.oci.layout import write_layout

        return write_layout(obj, s.path, name, progress, options.jobs).digest
    if isinstance(s, FSSpec):
        raise ImageError(f"{s}: fs:// is a source only; write an archive or layout instead")
    if isinstance(s, SBOMFileSpec):
        raise _no_image(s)
    from giropops.errors import DaemonError

    raise DaemonError(f"{s}: local:// is read-only; write archive://FILE and load it into the engine")
