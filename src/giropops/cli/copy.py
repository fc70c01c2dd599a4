"""``giropops copy SRC DST`` and its shorthands ``pull REF DST`` / ``push SRC REF``.

SRC and DST are specs (``registry://`` or a bare reference, ``archive://``,
``oci-dir://``, ``fs://``, ``local://``); see ``giropops.oci.transport``.
The digest of what was written goes to stdout; progress (per layer) to stderr
on a terminal unless ``--quiet``.

``--with-signatures`` (registry or ``oci-dir://`` on both sides) also carries the cosign signatures,
attestations and SBOMs (``.sig``/``.att``/``.sbom``) and the OCI referrers of the copied digest, byte for
byte, so the copy verifies with the same key or identity (``cosign copy`` / ``save`` / ``load``).
"""

from __future__ import annotations

import os
import sys

from giropops.cli._registry import transport_options
from giropops.errors import ImageReferenceError, ManifestError, UsageError, quote_for_error

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:  # the image code is imported by run, not by 'giropops copy --help'; argparse by neither
    import argparse
    from types import SimpleNamespace
    from typing import NoReturn

    from giropops.oci.image import Image, ImageIndex
    from giropops.oci.model import Digest, Platform
    from giropops.oci.transport import RegistrySpec, Spec, TransportOptions
    from giropops.progress import Progress
    from giropops.sign.storage import Store


#: ``giropops.oci.copypool.MAX_JOBS`` (not imported: that module loads tarfile, which --help need not).
_MAX_JOBS = 16
#: ``--jobs`` when not given.
_DEFAULT_JOBS = 4


def add_transport_args(p: argparse.ArgumentParser, platforms: bool = True) -> None:
    """Options shared by every command that opens image specs (the registry flags come from ``main``)."""
    if platforms:
        p.add_argument("--platform", help="os/arch[/variant] to pick from an index (default: this machine's)")
    # --insecure, --username, --password-stdin: every registry command's (cli.main, cli._registry)


def parse_platform(text: str | None) -> Platform | None:
    if text is None:
        return None
    from giropops.oci.model import Platform

    try:
        return Platform.parse(text)
    except ManifestError as exc:
        raise UsageError(str(exc)) from exc


def progress_for(args: argparse.Namespace) -> Progress:
    from giropops.progress import NO_PROGRESS

    if getattr(args, "quiet", False):
        return NO_PROGRESS
    from giropops.cli.progress import TerminalProgress  # a terminal's progress only: not imported by -q

    return TerminalProgress()


def _default_name(src: Spec) -> str | None:
    """The name an archive/layout destination records when it names none: the source's reference."""
    from giropops.oci.transport import LocalSpec, RegistrySpec

    if isinstance(src, RegistrySpec):
        return str(src.ref) if src.ref.tag else None
    if isinstance(src, LocalSpec):
        from giropops.oci.reference import Reference

        try:
            return str(Reference.parse(src.name))
        except ImageReferenceError:
            return None
    return None


_POSITIONAL_HELP = {
    "SRC": "the image to read: REF (registry), archive://FILE.tar, oci-dir://DIR[:NAME], local://REF (daemon)",
    "DST": "where to write it: REF (registry), archive://FILE.tar, oci-dir://DIR[:NAME]",
    "REF": "the {role} registry reference, e.g. 127.0.0.1:5001/giropops-senhas:1.0",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, helptext, a, b in (
        ("copy", "copy an image between registries, archives, layouts and directories", "SRC", "DST"),
        ("pull", "copy an image from a registry to an archive or layout", "REF", "DST"),
        ("push", "copy an image to a registry", "SRC", "REF"),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("source", metavar=a, help=_POSITIONAL_HELP[a].format(role="source"))
        p.add_argument("destination", metavar=b, help=_POSITIONAL_HELP[b].format(role="destination"))
        add_transport_args(p)
        p.add_argument("--all-platforms", action="store_true", help="copy a whole index, every platform")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
        p.add_argument("--jobs", "-j", type=int, default=_DEFAULT_JOBS, metavar="N",
                       help="layers transferred at once, one connection each (default: 4; crane uses one per "
                            "CPU, skopeo 6 per image; 1: one after the other)")
        p.add_argument("--chunk-size", type=int, default=None, metavar="BYTES",
                       help="push blobs in chunks of this size (default: one request per blob)")
        if name != "pull":
            p.add_argument("--preserve-digests", action="store_true",
                           help="push uncompressed layers as they are, keeping the image digest "
                                "(default: gzip them, reusing what the registry already holds)")
        p.add_argument("--with-signatures", action="store_true",
                       help="also copy the image's cosign signatures, attestations, SBOMs and OCI referrers "
                            "(registry or oci-dir:// on both sides)")
        p.set_defaults(func=run, mode=name)


_FAST_SHAPES = ("copy", "pull", "push")


def parse_plain(arguments: list[str]) -> SimpleNamespace | None:
    """The namespace the parser makes of ``COMMAND SRC DST [-q|--quiet]`` (COMMAND copy, pull or push; the
    options in any place, at most once; SRC and DST not starting with ``-``); None for anything else.

    The common copy, a push or pull in a script, then runs without argparse (its import, gettext's,
    and building the parser cost about as much as a warm push's own work); any other command line goes
    to the parser, which does exactly what it always did, errors and ``--help`` included.
    """
    if not arguments or arguments[0] not in _FAST_SHAPES:
        return None
    from giropops.cli._replay import plain_words  # the same shape the replay reads (a small module)

    words = plain_words(arguments[1:])
    if words is None:
        return None
    positionals, quiet = words
    from types import SimpleNamespace

    name = arguments[0]
    values: dict[str, object] = {
        "command": name, "source": positionals[0], "destination": positionals[1], "platform": None,
        "all_platforms": False, "quiet": quiet, "jobs": _DEFAULT_JOBS, "chunk_size": None,
        "with_signatures": False, "func": run, "mode": name,
        # cli.main: every registry command's --timeout and registry flags
        "registry_timeout": None, "insecure": False, "username": None, "password_stdin": False,
    }
    if name != "pull":
        values["preserve_digests"] = False
    return SimpleNamespace(**values)


def exit_now(code: int) -> NoReturn:
    """Exit with ``code``, skipping the interpreter's teardown when it has nothing left to do.

    The teardown frees every object of every module imported (6-10 ms after a push, more than a warm
    push's own work) and then exits anyway.  It is skipped only when what it would still do is done:
    stdout and stderr flushed, no ``atexit`` callback registered, no thread running but this one
    (daemon threads aside: the teardown does not wait for them either).  Otherwise ``sys.exit``.
    Files the command wrote were closed by it (``with`` blocks, ``finally``): the kernel closes the rest.
    """
    import atexit
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: the normal exit deals with it
        sys.exit(code)
    threading = sys.modules.get("threading")
    if threading is not None:
        me = threading.current_thread()
        if any(t is not me and t.is_alive() and not t.daemon for t in threading.enumerate()):
            sys.exit(code)
    callbacks = getattr(atexit, "_ncallbacks", None)
    if callbacks is None or callbacks() > 0:
        sys.exit(code)
    os._exit(code)


def _signature_store(spec: Spec, options: TransportOptions, digest: Digest) -> Store:
    """Where the signatures of ``digest`` live, reached with the same credentials as the image copy."""
    from giropops.oci.transport import OCIDirSpec, RegistrySpec
    from giropops.sign.storage import LayoutStore, open_registry_store

    if isinstance(spec, RegistrySpec):
        return open_registry_store(spec.ref, options)
    if isinstance(spec, OCIDirSpec):
        return LayoutStore(spec.path, None, digest)
    raise UsageError(f"--with-signatures copies between registries and oci-dir:// layouts only, not {spec}")


def run(args: argparse.Namespace) -> int:
    from giropops.oci.transport import OCIDirSpec, RegistrySpec, open_any, open_image, parse_spec, write_image
    from giropops.record import replace

    src = parse_spec(args.source)
    dst = parse_spec(args.destination)
    if args.mode == "pull" and not isinstance(src, RegistrySpec):
        raise UsageError(f"pull takes a registry reference, not {quote_for_error(args.source)}")
    if args.mode == "push" and not isinstance(dst, RegistrySpec):
        raise UsageError(f"push takes a registry reference as destination, not {quote_for_error(args.destination)}")
    if args.all_platforms and args.platform:
        raise UsageError("--platform and --all-platforms exclude each other")
    if args.chunk_size is not None and args.chunk_size <= 0:
        raise UsageError("--chunk-size must be positive")
    if not 1 <= args.jobs <= _MAX_JOBS:
        raise UsageError(f"--jobs must be between 1 and {_MAX_JOBS}, not {args.jobs}")
    if args.with_signatures:
        for spec in (src, dst):
            if not isinstance(spec, RegistrySpec | OCIDirSpec):
                raise UsageError(f"--with-signatures copies between registries and oci-dir:// layouts only, "
                                 f"not {spec}")
    options = replace(transport_options(args, name=_default_name(src)), jobs=args.jobs)
    # signatures name the image's digest: a copy that carries them must keep it
    if getattr(args, "preserve_digests", False) or args.with_signatures:
        options = replace(options, preserve_digests=True)
    platform = parse_platform(args.platform)
    replayable = _replayable(args, src, dst)
    identity = None
    if replayable is not None:
        from giropops.oci.registry.replay import identity as identity_of

        identity = identity_of(replayable[0])
    obj: Image | ImageIndex
    if args.all_platforms:
        obj = open_any(src, options)
    else:
        obj = open_image(src, platform, options)
    if replayable is not None and identity is not None and isinstance(dst, RegistrySpec):
        digest = _push_recorded(obj, dst, options, progress_for(args), replayable[0], identity)
    else:
        digest = write_image(obj, dst, options, progress_for(args))
    if args.with_signatures:
        _copy_signatures(src, dst, options, digest)
    print(digest)
    return 0


def _replayable(args: argparse.Namespace | SimpleNamespace, src: Spec, dst: Spec) -> tuple[str, str] | None:
    """(archive path, registry host) when this copy can be recorded for a replay (``cli._replay``): the
    command line is one ``cli._replay.parse`` takes, and it reads as the parser read it."""
    from giropops.cli import _replay
    from giropops.oci.transport import ArchiveSpec, RegistrySpec

    if (args.mode == "pull" or args.platform is not None or args.all_platforms or args.chunk_size is not None
            or getattr(args, "preserve_digests", False) or args.with_signatures or args.insecure
            or args.username is not None or args.password_stdin or args.registry_timeout is not None):
        return None
    parsed = _replay.parse([args.mode, args.source, args.destination])
    if parsed is None or not isinstance(src, ArchiveSpec) or not isinstance(dst, RegistrySpec):
        return None
    archive, (host, repo, tag), _quiet = parsed
    ref = dst.ref
    if src.name is not None or src.digest is not None or archive != os.path.abspath(src.path):
        return None
    if (ref.registry_host, ref.path, ref.tag, ref.digest) != (host, repo, tag, None):
        return None
    return archive, host


def _push_recorded(obj: Image | ImageIndex, dst: RegistrySpec, options: TransportOptions, progress: Progress,
                   archive: str, identity: tuple[int, ...]) -> Digest:
    """``write_image`` to a registry, then a replay record of the push (``giropops.oci.registry.replay``)."""
    from giropops.oci.registry import write_registry
    from giropops.oci.registry.blobinfo import BlobInfoCache
    from giropops.oci.transport import registry_options

    pushed: list[tuple[bytes, str]] = []
    with BlobInfoCache.default() as cache:
        digest = write_registry(obj, dst.ref, registry_options(options), progress=progress, blob_cache=cache,
                                compress=not options.preserve_digests, jobs=options.jobs, pushed_manifest=pushed)
    _record(obj, dst, archive, identity, pushed)
    return digest


def _record(obj: Image | ImageIndex, dst: RegistrySpec, archive: str, identity: tuple[int, ...],
            pushed: list[tuple[bytes, str]]) -> None:
    """Record the push just done for a replay, when it is one a replay can repeat exactly."""
    import json

    from giropops.cachedir import cache_root_text
    from giropops.oci import mediatypes as mt
    from giropops.oci.image import Image
    from giropops.oci.registry import replay

    if not isinstance(obj, Image) or len(pushed) != 1 or replay.identity(archive) != identity:
        return  # an index (its children are PUT too), or the archive changed while it was read
    raw, media_type = pushed[0]
    if media_type not in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST):
        return
    try:
        manifest = json.loads(raw)
        descriptors = [manifest["config"], *manifest["layers"]]
        blobs = [(d["digest"], d["size"]) for d in descriptors]
    except (ValueError, KeyError, TypeError):
        return
    if "subject" in manifest or any("urls" in d for d in descriptors):
        return  # a referrers tag to maintain, foreign layers: the full path's business
    if not all(isinstance(d, str) and replay.is_digest(d) and type(n) is int and n >= 0 for d, n in blobs):
        return
    repo = dst.ref.path
    record = replay.Record(identity, replay.environment(), dst.ref.registry_host, repo, str(obj.digest),
                           media_type, raw, blobs)
    replay.save(replay.record_path(cache_root_text(), archive, dst.ref.registry_host), record)


def _copy_signatures(src: Spec, dst: Spec, options: TransportOptions, digest: Digest) -> None:
    from giropops.sign.transfer import copy_signatures

    src_store = _signature_store(src, options, digest)
    dst_store = _signature_store(dst, options, digest)
    report = copy_signatures(src_store, dst_store, digest)
    if report.count == 0:
        print(f"Note: nothing is attached to {digest} at the source (no signatures, attestations, SBOMs or "
              f"referrers); an index's signatures travel only with --all-platforms", file=sys.stderr)
        return
    parts = [f".{suffix}" for suffix in report.attached] + ([f"{len(report.referrers)} referrer(s)"]
                                                            if report.referrers else [])
    print(f"Copied {', '.join(parts)} of {digest}", file=sys.stderr)
