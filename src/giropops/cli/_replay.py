"""A warm push of an unchanged archive, replayed before argparse and the image code are imported.

``giropops.oci.registry.replay`` keeps what a push of an archive concluded; ``cli.copy`` records it
after a plain push, and ``entry`` hands these exact shapes here first (``-q``/``--quiet`` at most once,
anywhere):

    copy|push archive://FILE registry://HOST/REPO:TAG [-q]

with FILE a path without ``:`` or ``@`` (no name or digest selected in the archive), HOST a loopback
registry (``localhost``, ``127.x.y.z``, ``[::1]``, with or without a port: plain HTTP, no TLS), REPO and
TAG as the distribution spec spells them.  The replay runs only when a record of that archive path and
registry exists, the archive's identity (device, inode, size, mtime, ctime) and the environment that
changes a push (``GIROPOPS_*``, ``DOCKER_CONFIG``, ``HOME``) are those recorded, no proxy is set, and
progress would not be drawn (``-q``, or stderr not a terminal).  It then prints what the full command
prints (the digest, on stdout) and exits 0.  Anything else, a miss or an answer of the registry the
replay does not expect, returns None having written nothing (and PUT no manifest): ``entry`` runs the
full command, which does exactly what it always did.

Imports: ``os``, ``giropops.cachedir``, ``giropops.timeouts``, the replay record and, on a hit, the
registry client's HTTP module.  No argparse, no image code, no ``json``.
"""

from __future__ import annotations

import os
import sys

_QUIET = frozenset({"-q", "--quiet"})
_PROXIES = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def loopback(host: str) -> bool:
    """``host`` (with an optional port) is one the registry client speaks plain HTTP to without ``--insecure``."""
    if host.startswith("[::1]"):
        name, port = "[::1]", host[5:]
    else:
        name, _, port = host.partition(":")
        port = ":" + port if _ else ""
    if port and not (port[0] == ":" and port[1:].isdigit() and len(port) <= 6):
        return False
    if name in ("localhost", "[::1]"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


def _component(text: str) -> bool:
    """A path component of a repository name: ``[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*``."""
    if not text or text[0] not in _ALNUM or text[-1] not in _ALNUM:
        return False
    separator = ""
    for ch in text:
        if ch in _ALNUM:
            if separator not in ("", ".", "_", "__") and separator.strip("-"):
                return False
            separator = ""
        elif ch in "._-":
            separator += ch
        else:
            return False
    return True


def parse_destination(text: str) -> tuple[str, str, str] | None:
    """(host, repository, tag) of ``registry://HOST/REPO:TAG`` with a loopback HOST; None for anything else."""
    if not text.startswith("registry://"):
        return None
    host, _, rest = text[len("registry://"):].partition("/")
    repo, _, tag = rest.rpartition(":")
    if not loopback(host) or not repo or len(repo) > 255 or "/" in tag or not 0 < len(tag) <= 128:
        return None
    if tag[0] in ".-" or not _TAG.issuperset(tag) or not all(_component(c) for c in repo.split("/")):
        return None
    return host, repo, tag


def parse_archive(text: str) -> str | None:
    """The absolute path of ``archive://FILE`` (FILE without ``:`` or ``@``); None for anything else."""
    if not text.startswith("archive://"):
        return None
    path = text[len("archive://"):]
    if not path or ":" in path or "@" in path or "\0" in path:
        return None
    return os.path.abspath(path)


def plain_words(words: list[str]) -> tuple[list[str], bool] | None:
    """(SRC and DST, quiet) of ``SRC DST`` with ``-q``/``--quiet`` at most once anywhere, neither starting
    with ``-``; None for any other shape (``cli.copy.parse_plain`` reads the same shape)."""
    positionals: list[str] = []
    quiet = False
    for word in words:
        if word in _QUIET and not quiet:
            quiet = True
        elif word and not word.startswith("-") and len(positionals) < 2:
            positionals.append(word)
        else:
            return None
    return (positionals, quiet) if len(positionals) == 2 else None


def parse(arguments: list[str]) -> tuple[str, tuple[str, str, str], bool] | None:
    """(archive path, (host, repository, tag), quiet) for the shapes in the module docstring, else None."""
    if arguments[:1] not in (["copy"], ["push"]):
        return None
    words = plain_words(arguments[1:])
    if words is None:
        return None
    positionals, quiet = words
    archive = parse_archive(positionals[0])
    destination = parse_destination(positionals[1])
    if archive is None or destination is None:
        return None
    return archive, destination, quiet


def serve_push(arguments: list[str]) -> int | None:
    """The exit code of ``giropops ARGUMENTS`` once replayed; None when the full command must run instead."""
    parsed = parse(arguments)
    if parsed is None:
        return None
    try:
        return _serve(*parsed)
    except KeyboardInterrupt:  # Ctrl-C: nothing was written that the full path would not write
        from giropops.cli import exitcodes

        print("giropops: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED


def _serve(archive: str, destination: tuple[str, str, str], quiet: bool) -> int | None:
    if any(os.environ.get(name) for name in _PROXIES):
        return None  # the full path's HTTP client goes through it (and says what goes wrong)
    if not quiet:
        try:
            if sys.stderr.isatty():
                return None  # the full path draws progress there
        except (AttributeError, ValueError):
            return None
    from giropops.cachedir import cache_root_text
    from giropops.oci.registry import replay

    host, repo, tag = destination
    path = replay.record_path(cache_root_text(), archive, host)
    record = replay.load(path)
    if record is None or record.host != host or record.identity != replay.identity(archive):
        return None
    if record.environment != replay.environment():
        return None
    from giropops import timeouts

    digest = replay.replay(record, repo, tag, timeouts.request_timeout())
    if digest is None:
        return None
    try:
        sys.stdout.write(digest + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stderr.close()  # as ``main.run``: stdout closed early is not an error
    return 0


def exit_now(code: int) -> None:
    """Exit with ``code`` without the interpreter's teardown when nothing is left for it (``cli.copy.exit_now``
    says why), else ``sys.exit``."""
    import atexit

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    callbacks = getattr(atexit, "_ncallbacks", None)
    if callbacks is None or callbacks() > 0 or "threading" in sys.modules:
        sys.exit(code)
    os._exit(code)


__all__ = ["exit_now", "loopback", "parse", "parse_archive", "parse_destination", "serve_push"]
