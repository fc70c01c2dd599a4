"""Whole ``giropops sbom`` results of unchanged archive files: the warm run of a command already run.

An SBOM of ``archive://FILE`` is a function of the file's bytes, of the request (the spec as
typed, which names the subject; ``--platform``; the format; the package types) and of the
code that computes it.  When all of those are what they were, the document written last
time is written again, without opening the archive:

* the file's bytes are known unchanged by its identity, ``(st_dev, st_ino, st_size,
  st_mtime_ns, st_ctime_ns)``, with the argument and the settle rule of ``proofs`` (a write
  changes the change time, which only the kernel sets; a file changed within
  ``SETTLE_SECONDS`` of the run that stored the result gets no entry);
* the code is known unchanged by the path, size and mtime of every module of this package (but the
  subpackages an SBOM never imports, ``NOT_SBOM_CODE``), of ``packageurl`` and of the SPDX license
  index, plus the Python and giropops versions;
* the environment that can change a result (every ``GIROPOPS_*`` variable) is part of the key.

A result is stored only by a run that succeeded and showed no warning (a warm run must say
what the cold one said: nothing), never with a timestamp (``--timestamp``,
``SOURCE_DATE_EPOCH``) and never with ``--no-cache``.  Only ``archive://PATH`` and ``oci-dir://DIR``
specs without a ``:NAME`` or ``@DIGEST`` take part.  A layout directory's identity is the name and
identity of ``oci-layout``, ``index.json`` and every file under ``blobs/<alg>/`` (all a layout source
reads), and the settle rule applies to the newest change time among them.  Entries are
``MAGIC``, the key's length, the key, the document; an entry whose key is not the request's, or
that is unreadable, is a miss.  The trust placed in the cache directory is the layer cache's:
whoever can write here can write layer records too.

Imports: ``os``, ``stat``, ``sys`` and ``time`` only (all loaded at start-up but ``time``, which is built in); a
hit must not pay for the catalogers.
"""

from __future__ import annotations

import os
import stat
import sys
import time

from giropops import __version__

MAGIC = b"GIROPOPS-SBOM-RESULT-1\n"
#: See ``giropops.sbom.proofs.SETTLE_SECONDS`` (the same rule).
SETTLE_SECONDS = 2.0
#: Entries kept at most, and their total size; the least recently used go first.
MAX_ENTRIES = 256
MAX_BYTES = 256 * 1024 * 1024
AREA = "sbom-results"


class Request:
    """A cacheable ``giropops sbom`` request: its key, and the archive's identity when it began."""

    def __init__(self, path: str, identity: tuple[int | str, ...], key: bytes, started_ns: int, layout: bool = False,
                 newest_ctime_ns: int | None = None) -> None:
        self.path = path
        self.identity = identity
        self.key = key
        self.started_ns = started_ns
        self.layout = layout  # an OCI layout directory: ``identity`` is ``_layout_identity``'s
        self.newest_ctime_ns = int(identity[4]) if newest_ctime_ns is None else newest_ctime_ns


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _layout_identity(root: str) -> tuple[tuple[int | str, ...], int] | None:
    """The identity of an OCI layout directory (``oci-layout``, ``index.json`` and every file under
    ``blobs/<alg>/``, in name order: everything a layout source reads) and the newest change time among
    them; None when any is not a regular file or directory as a layout source requires (symbolic links
    included: the transport refuses those, and says so on the full path)."""
    out: list[int | str] = []
    newest = 0

    def add(path: str) -> bool:
        nonlocal newest
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return False
        out.append(os.path.basename(path))
        out.extend(_identity(st))
        newest = max(newest, st.st_ctime_ns)
        return True

    try:
        if not (add(os.path.join(root, "oci-layout")) and add(os.path.join(root, "index.json"))):
            return None
        blobs = os.path.join(root, "blobs")
        if not stat.S_ISDIR(os.stat(blobs, follow_symlinks=False).st_mode):
            return None
        with os.scandir(blobs) as it:
            algorithms = sorted(it, key=lambda e: e.name)
        for algorithm in algorithms:
            if not algorithm.is_dir(follow_symlinks=False):
                return None
            with os.scandir(algorithm.path) as it:
                files = sorted(it, key=lambda e: e.name)
            out.append(algorithm.name)
            for f in files:
                if not add(f.path):
                    return None
    except (OSError, ValueError):
        return None
    return tuple(out), newest


#: Subpackages of giropops that making an SBOM never imports (``tests/sbom/test_results_cache.py`` proves it
#: of every module the fingerprint covers): a change there cannot change a document, and leaving them out
#: halves the ``stat`` calls of every warm run.
NOT_SBOM_CODE = frozenset({"builder", "demo", "fleet", "policy", "reco", "sign", "vuln"})


def _tree(root: str, suffix: str, out: list[str], skip: frozenset[str] = frozenset()) -> None:
    """Path, size and mtime of every ``suffix`` file under ``root`` but the directories ``skip`` names right
    under it, in a fixed order (one ``stat`` each: ``os.walk`` and a path join per file cost several times
    more)."""
    stack = [root]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            out.append(f"{exc.filename}:unreadable")
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if e.name != "__pycache__" and not (top == root and e.name in skip):
                    stack.append(e.path)
            elif e.name.endswith(suffix):
                try:
                    st = e.stat()
                except OSError:
                    out.append(f"{e.path}:missing")
                    continue
                out.append(f"{e.path}:{st.st_size}:{st.st_mtime_ns}")


_fingerprint: list[str] = []


def code_fingerprint() -> list[str]:
    """What identifies the code an SBOM comes from (see the module docstring).  Taken once per process (the
    code a process runs is the code it started with; ``giropops sbom`` asks twice on a cold run: before
    and after parsing its arguments)."""
    if not _fingerprint:
        _fingerprint.extend(_code_fingerprint())
    return list(_fingerprint)


def _code_fingerprint() -> list[str]:
    out = [__version__, sys.version, os.uname().machine]
    _tree(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "", out, NOT_SBOM_CODE)  # modules, data
    for entry in sys.path:
        base = entry or "."
        purl = os.path.join(base, "packageurl")
        if os.path.isfile(os.path.join(purl, "__init__.py")):
            _tree(purl, ".py", out)
            break
    for entry in sys.path:
        index = os.path.join(entry or ".", "license_expression", "data", "scancode-licensedb-index.json")
        if os.path.isfile(index):
            st = os.stat(index)
            out.append(f"{index}:{st.st_size}:{st.st_mtime_ns}")
            break
    return out


def request(spec: str, platform: str | None, fmt: str, types: frozenset[str]) -> Request | None:
    """The cacheable request for these arguments, or None when they cannot be served from a result."""
    layout = spec.startswith("oci-dir://")
    if not (layout or spec.startswith("archive://")) or os.environ.get("SOURCE_DATE_EPOCH") is not None:
        return None
    path = spec[len("oci-dir://" if layout else "archive://"):]
    if not path or ":" in path or "@" in path or path.startswith("~"):
        return None  # a :NAME or @DIGEST (or a home directory) is for the transport to read
    started = time.time_ns()
    newest: int | None = None
    identity: tuple[int | str, ...]
    if layout:
        found = _layout_identity(path)
        if found is None:
            return None
        identity, newest = found
    else:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        identity = _identity(st)
    env = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("GIROPOPS_"))
    parts = [*code_fingerprint(), *env, spec, platform or "", fmt, ",".join(sorted(types)),
             ":".join(str(i) for i in identity)]
    key = "\0".join(parts).encode("utf-8", "surrogateescape")
    return Request(path, identity, key, started, layout, newest)


def _root() -> str:
    from giropops.cachedir import cache_root_text

    return os.path.join(cache_root_text(), AREA)


_MERSENNE_61 = (1 << 61) - 1


def _name(key: bytes) -> str:
    """A file name for ``key``: the key's bytes as a number modulo the prime 2**61-1 (C speed, no module to
    load), and its length.  Two keys may share a name: the entry holds its whole key, so that is a miss."""
    return f"{int.from_bytes(key, 'big') % _MERSENNE_61:016x}{len(key):x}"


def load(req: Request) -> bytes | None:
    """The document stored for ``req``, or None."""
    path = os.path.join(_root(), _name(req.key))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(MAGIC) + 8
    if not data.startswith(MAGIC) or len(data) < head:
        return None
    n = int.from_bytes(data[len(MAGIC):head], "big")
    if data[head:head + n] != req.key:
        return None
    try:
        os.utime(path)  # recently used: evicted last
    except OSError:
        pass
    return data[head + n:]


def store(req: Request, document: bytes) -> None:
    """Keep ``document`` for ``req`` once the run that made it succeeded; best effort."""
    if req.newest_ctime_ns > req.started_ns - int(SETTLE_SECONDS * 1e9):
        return  # changed too recently to tell a later change in the same tick apart
    if req.layout:
        now = _layout_identity(req.path)
        if now is None or now[0] != req.identity:
            return  # changed while it was read
    else:
        try:
            if _identity(os.stat(req.path)) != req.identity:
                return  # changed while it was read
        except OSError:
            return
    from giropops.fileio import atomic_write

    root = _root()
    path = os.path.join(root, _name(req.key))
    try:
        os.makedirs(root, exist_ok=True)
        atomic_write(path, MAGIC + len(req.key).to_bytes(8, "big") + req.key + document, 0o600)
    except OSError:
        return
    _evict(root, path)


def _evict(root: str, keep: str) -> None:
    entries: list[tuple[float, int, str]] = []
    try:
        with os.scandir(root) as it:
            for e in it:
                if e.name.startswith(".") or e.path == keep:
                    continue
                try:
                    st = e.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime, st.st_size, e.path))
    except OSError:
        return
    try:
        kept = os.stat(keep).st_size
    except OSError:
        kept = 0
    total = kept + sum(size for _, size, _ in entries)
    count = len(entries) + 1
    for _, size, path in sorted(entries):  # the least recently used first; ``keep`` never
        if count <= MAX_ENTRIES and total <= MAX_BYTES:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        count -= 1
        total -= size


__all__ = ["AREA", "MAGIC", "MAX_BYTES", "MAX_ENTRIES", "NOT_SBOM_CODE", "SETTLE_SECONDS", "Request",
           "code_fingerprint", "load", "request", "store"]
