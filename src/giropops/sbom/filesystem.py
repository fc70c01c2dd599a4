"""The squashed view of an image's layers that catalogers read, as syft's resolvers do.

Each layer is streamed once (``read_layer``) into a ``LayerRecords``: the path
index of that layer (kind, link target, size), its whiteouts and opaque
directories, and the *contents* of the few files some cataloger declared an
interest in (globs such as ``var/lib/dpkg/status``), each bounded in size.  The
records of one layer depend only on that layer's bytes and the interest, which
is what makes them cacheable by diff_id (``cache.py``); ``Filesystem`` then
squashes the records bottom to top, applying whiteouts the way overlayfs does,
so a file deleted by an upper layer is gone however the layers were cached.

Catalogers only see the ``Resolver`` protocol: globs over real paths, reads
that follow symbolic links *inside the image root only* (``..`` stops at the
root and absolute targets are taken from the root, so an escaping link never
reads the host), and the layer each file came from.  ``DirectoryResolver``
serves a plain directory through the same protocol.

Hostile entries never break it: names with ``..`` are dropped (and counted),
absolute names are taken relative to the root, devices and fifos are indexed but
never read, oversized files are recorded as such instead of being kept.

Known limit of reading each layer once: a hard link whose *name* matches a glob
but whose target does not (and was streamed earlier) has no contents; no package
database is laid out that way in practice.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache

from giropops.errors import SBOMError
from giropops.record import field, record
from giropops.runtime_typing import Protocol, cast
from giropops.sbom.model import Location
from giropops.sbom.tarstream import (
    DIRECTORY,
    HARDLINK,
    OTHER,
    REGULAR,
    SYMLINK,
    DigestCheck,
    Prefetcher,
    RegionReader,
    TarReader,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

MAX_FILE_BYTES = 16 * 1024 * 1024  # one metadata file kept in memory at most this big
MAX_LAYER_BYTES = 256 * 1024 * 1024  # all kept contents of one layer together
MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
# An executable larger than this is written to a temporary file and mapped, not held in memory: the
# peak of a cold run is then the parsing pipeline, not the largest binary of the image.
MAP_BYTES = 8 * 1024 * 1024
MAX_LAYER_ENTRIES = 4_000_000  # the path index of one layer; real images have a few hundred thousand
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@lru_cache(maxsize=256)
def glob_source(pattern: str) -> str:
    """The regular expression (text) of a glob: ``*`` and ``?`` stay within one path component;
    ``**/`` spans any number of directories."""
    return "".join(re.escape(t) if literal else t for t, literal in _glob_tokens(pattern)) + r"\Z"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """``glob_source`` compiled (a compiled pattern is cached by ``re``)."""
    return re.compile(glob_source(pattern), re.DOTALL)


@lru_cache(maxsize=256)
def glob_literals(pattern: str) -> tuple[str, str, bool]:
    """(prefix, suffix, literal): what every path matching ``pattern`` starts and ends with (the
    characters before its first and after its last wildcard), and whether it has no wildcard at all
    (then the prefix is the one path it matches).  Cheap string tests that spare compiling the
    pattern of a glob nothing kept could match."""
    tokens = _glob_tokens(pattern)
    wild = [i for i, (_, literal) in enumerate(tokens) if not literal]
    if not wild:
        return pattern.lstrip("/"), "", True
    prefix = "".join(t for t, _ in tokens[: wild[0]])
    suffix = "".join(t for t, _ in tokens[wild[-1] + 1 :])
    return prefix, suffix, False


def _glob_tokens(pattern: str) -> list[tuple[str, bool]]:
    """``pattern`` as (regex text of a wildcard, False) and (literal character, True) tokens."""
    out: list[tuple[str, bool]] = []
    i = 0
    pattern = pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append(("(?:.*/)?", False))
            i += 3
        elif pattern.startswith("**", i):
            out.append((".*", False))
            i += 2
        elif pattern[i] == "*":
            out.append(("[^/]*", False))
            i += 1
        elif pattern[i] == "?":
            out.append(("[^/]", False))
            i += 1
        else:
            out.append((pattern[i], True))
            i += 1
    return out


class Extractor(Protocol):
    """Reads a file too large or too binary to keep (an executable, a jar) while its layer streams by,
    and keeps only what a cataloger needs from it, as bytes that say what they are (``extract``).

    ``extract`` never raises: a malformed file gives a record that says so (or None when the file
    is simply not of its kind).  ``version`` is part of the cache fingerprint.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def max_bytes(self) -> int: ...

    def wants(self, path: str, mode: int) -> bool: ...

    def extract(self, data: bytes | bytearray) -> bytes | None: ...


class Interest:
    """The union of the globs catalogers declared: only matching files have their contents kept;
    files an ``Extractor`` wants are read and replaced by what it extracted."""

    def __init__(
        self,
        patterns: Iterable[str],
        max_file_bytes: int = MAX_FILE_BYTES,
        extractors: Iterable[Extractor] = (),
    ) -> None:
        self.patterns = tuple(sorted({p.lstrip("/") for p in patterns}))
        self.max_file_bytes = max_file_bytes
        self.extractors = tuple(sorted(extractors, key=lambda e: e.name))

    def extractor_for(self, path: str, mode: int) -> Extractor | None:
        for e in self.extractors:
            if e.wants(path, mode):
                return e
        return None

    @cached_property
    def _literals(self) -> frozenset[str]:
        """The globs without a wildcard: each matches the one path it names (a set lookup)."""
        return frozenset(p for p in self.patterns if glob_literals(p)[2])

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        # Compiled on first use (a run whose layers are all cached only needs the fingerprint), of the
        # globs with a wildcard: a layer whose files of interest are all named ones never compiles it.
        wild = [p for p in self.patterns if p not in self._literals]
        return re.compile("|".join(f"(?:{glob_source(p)})" for p in wild) or r"(?!)", re.DOTALL)

    @cached_property
    def _prefilter(self) -> tuple[tuple[str, ...], re.Pattern[str] | None, bool]:
        """What every match must have, cheap to test on each of a layer's tens of thousands of paths:
        an anchored glob's literal prefix, or a ``**/``-glob's last component matching the path's
        last component (``*`` and ``?`` never cross a ``/``).  A glob whose last component could be
        anything (``**``, or a lone ``*`` after ``**/``) turns the filter off."""
        prefixes: list[str] = []
        bases: list[str] = []
        always = False
        for p in self.patterns:
            if p.startswith("**"):
                base = p.rpartition("/")[2]
                if "**" in base or not base.strip("*?"):
                    always = True
                else:
                    bases.append(glob_source(base))
            else:
                cut = min((i for i in (p.find("*"), p.find("?")) if i >= 0), default=len(p))
                prefixes.append(p[:cut])
        base_re = re.compile("|".join(f"(?:{b})" for b in bases), re.DOTALL) if bases else None
        return tuple(prefixes), base_re, always

    def matches(self, path: str) -> bool:
        if path in self._literals:
            return True
        prefixes, base_re, always = self._prefilter
        if not (
            always
            or path.startswith(prefixes)
            or (base_re is not None and base_re.match(path.rpartition("/")[2]) is not None)
        ):
            return False
        return self._regex.match(path) is not None

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.max_file_bytes}\n".encode())
        for p in self.patterns:
            h.update(p.encode() + b"\n")
        for e in self.extractors:
            h.update(f"extractor {e.name} {e.version} {e.max_bytes}\n".encode())
        return h.hexdigest()[:16]


def clean_path(name: str) -> str | None:
    """``./a//b/`` -> ``a/b``; absolute names are relative to the root; any ``..`` makes it hostile (None)."""
    if (
        name
        and name[0] not in "/."
        and name[-1] != "/"
        and "//" not in name
        and "/." not in name
        and "\0" not in name
    ):
        return name  # already clean (most names): no empty, ``.`` or ``..`` component, no NUL
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == ".." or "\0" in p:
            return None
        parts.append(p)
    return "/".join(parts)


def _split(path: str) -> tuple[str, str]:
    parent, _, base = path.rpartition("/")
    return parent, base


@record(frozen=False)
class LayerRecords:
    """What one layer contributes; depends only on the layer's bytes and the interest."""

    diff_id: str | None
    entries: list[tuple[str, str, str, int]] = field(default_factory=list)  # path, kind, link, size
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    oversized: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # hostile names, kept for diagnostics


def read_layer(
    stream: BinaryIO | RegionReader,
    diff_id: str | None,
    interest: Interest,
    max_layer_bytes: int = MAX_LAYER_BYTES,
    check: DigestCheck | None = None,
) -> LayerRecords:
    """Stream one uncompressed layer tar once, keeping the path index and contents of interest.

    ``check`` sees every byte of the stream (to its end, even past the end-of-archive blocks) and
    raises at the end if they are not the layer's: then no records are returned."""
    what = f"layer {diff_id}" if diff_id else "layer"
    if isinstance(stream, RegionReader):  # read where it lies, bodies skipped: its digest is proven elsewhere
        if check is not None:
            raise ValueError("a RegionReader skips bytes: no check can see them all")
        return _read_layer(TarReader(cast("BinaryIO", stream), what), diff_id, interest, max_layer_bytes)
    prefetch = Prefetcher(stream, check=check)
    try:
        return _read_layer(TarReader(cast("BinaryIO", prefetch), what), diff_id, interest, max_layer_bytes)
    finally:
        prefetch.close()


def _read_layer(reader: TarReader, diff_id: str | None, interest: Interest, max_layer_bytes: int) -> LayerRecords:
    rec = LayerRecords(diff_id)
    kept = 0
    for entry in reader:
        if len(rec.entries) >= MAX_LAYER_ENTRIES:
            raise SBOMError(f"layer {diff_id}: more than {MAX_LAYER_ENTRIES} entries")
        path = clean_path(entry.name)
        if path is None:
            rec.skipped.append(entry.name[:256])
            continue
        if not path:
            continue  # the root itself
        parent, base = _split(path)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                rec.opaque.append(parent)
            else:
                target = base[len(WHITEOUT_PREFIX) :]
                if target and target not in (".", "..", OPAQUE_MARKER[len(WHITEOUT_PREFIX) :]):
                    rec.whiteouts.append(f"{parent}/{target}" if parent else target)
                else:
                    rec.skipped.append(entry.name[:256])
            continue
        kind, link = entry.kind, entry.linkname
        if kind == HARDLINK:
            cleaned = clean_path(link)
            if not cleaned:
                rec.skipped.append(entry.name[:256])
                continue
            link = cleaned
        rec.contents.pop(path, None)
        rec.oversized.pop(path, None)
        rec.entries.append((path, kind, link, entry.size if kind == REGULAR else 0))
        if kind == REGULAR and interest.matches(path):
            if entry.size > interest.max_file_bytes or kept + entry.size > max_layer_bytes:
                rec.oversized[path] = entry.size
            else:
                rec.contents[path] = reader.read_data(entry.size)
                kept += entry.size
        elif kind == REGULAR and interest.extractors:
            extractor = interest.extractor_for(path, entry.mode)
            if extractor is not None and entry.size > extractor.max_bytes:
                rec.oversized[path] = entry.size  # not inspected: the cataloger says so
            elif extractor is not None:
                derived = _extract(reader, extractor, entry.size)
                if derived is not None:
                    if kept + len(derived) > max_layer_bytes:
                        rec.oversized[path] = entry.size
                    else:
                        rec.contents[path] = derived
                        kept += len(derived)
        elif kind == HARDLINK and (interest.matches(path) or interest.extractors):
            if link in rec.contents:
                rec.contents[path] = rec.contents[link]
            elif link in rec.oversized:
                rec.oversized[path] = rec.oversized[link]
    reader.drain()
    return rec


def _extract(reader: TarReader, extractor: Extractor, size: int) -> bytes | None:
    """Run ``extractor`` on the current entry: in memory, or, when it is larger than ``MAP_BYTES`` and
    the extractor takes a mapping (``extract_mapped``), from a temporary file mapped read-only."""
    mapped = getattr(extractor, "extract_mapped", None)
    if mapped is not None:  # a layer in a local file: the parts read where they lie, not all copied
        region = reader.read_data_region(size)
        if region is not None:
            result: bytes | None = mapped(region)
            return result
    if mapped is not None and size > MAP_BYTES:
        try:
            view = reader.read_data_mapped(size)
        except OSError:  # no temporary file: in memory then, as below
            pass
        else:
            with view:
                result = mapped(view)
                return result
    return extractor.extract(reader.read_data_buffer(size))


class Resolver(Protocol):
    """What catalogers may ask of a filesystem."""

    def glob(self, pattern: str) -> list[str]:
        """Real paths of files of interest matching ``pattern`` (sorted)."""

    def read(self, path: str) -> bytes | None:
        """Contents of a file of interest, following symlinks inside the root; None if absent."""

    def oversized(self, path: str) -> int | None:
        """The size of a file of interest that was too large to keep, else None."""

    def exists(self, path: str) -> bool: ...

    def location(self, path: str) -> Location:
        """The path with the diff_id of the layer its current contents came from."""

    def history(self, path: str) -> list[tuple[str | None, bytes]]:
        """Successive contents of a file, bottom layer first, since it was last created."""


class _Node:
    __slots__ = ("kind", "layer", "link", "size")

    def __init__(self, kind: str, link: str, size: int, layer: int) -> None:
        self.kind = kind
        self.link = link
        self.size = size
        self.layer = layer


class Filesystem:
    """Layers squashed bottom to top; implements ``Resolver``."""

    def __init__(self, layers: Sequence[LayerRecords]) -> None:
        self._layers = [r.diff_id for r in layers]
        self._nodes: dict[str, _Node] = {"": _Node(DIRECTORY, "", 0, 0)}
        self._children: dict[str, set[str]] = {"": set()}
        self._contents: dict[str, bytes] = {}
        self._oversized: dict[str, int] = {}
        self._history: dict[str, list[tuple[int, bytes]]] = {}
        self.skipped: list[str] = []
        for i, rec in enumerate(layers):
            self._apply(i, rec)

    # -- squashing ---------------------------------------------------------------------------

    def _remove(self, path: str) -> None:
        if path not in self._nodes:
            return
        parent, _ = _split(path)
        siblings = self._children.get(parent)
        if siblings is not None:
            siblings.discard(path)
        stack = [path]  # iterative: hostile layers nest deeper than Python's recursion limit
        while stack:
            p = stack.pop()
            self._nodes.pop(p, None)
            self._contents.pop(p, None)
            self._oversized.pop(p, None)
            self._history.pop(p, None)
            stack.extend(self._children.pop(p, ()))

    def _clear_dir(self, path: str) -> None:
        for child in list(self._children.get(path, ())):
            self._remove(child)

    def _dir_for(self, parent: str, layer: int) -> str:
        """The real directory an entry under ``parent`` lands in (creating implicit directories)."""
        node = self._nodes.get(parent)
        if node is not None and node.kind == DIRECTORY:
            return parent
        real = ""
        for comp in parent.split("/"):
            cand = f"{real}/{comp}" if real else comp
            node = self._nodes.get(cand)
            if node is not None and node.kind == SYMLINK:
                # As containerd applies layers: a parent that is a symlink is followed, within the root.
                target = self._resolve(cand)
                if target is not None and self._nodes[target].kind == DIRECTORY:
                    real = target
                    continue
            if node is None or node.kind != DIRECTORY:
                self._remove(cand)
                self._nodes[cand] = _Node(DIRECTORY, "", 0, layer)
                self._children[cand] = set()
                self._children[real].add(cand)
            real = cand
        return real

    def _apply(self, i: int, rec: LayerRecords) -> None:
        for d in rec.opaque:
            real = self._resolve(d) if d else ""
            if real is not None and real in self._children:
                self._clear_dir(real)
        for w in rec.whiteouts:
            parent, base = _split(w)
            real_parent = self._resolve(parent) if parent else ""
            if real_parent is not None:
                self._remove(f"{real_parent}/{base}" if real_parent else base)
        for path, kind, link, size in rec.entries:
            parent, base = _split(path)
            real_parent = self._dir_for(parent, i) if parent else ""
            real = f"{real_parent}/{base}" if real_parent else base
            existing = self._nodes.get(real)
            # A file rewritten by an upper layer keeps its history (which layer added which record
            # of a package database); a whiteout, by contrast, starts it afresh.
            earlier = self._history.get(real) if existing is not None and existing.kind == REGULAR else None
            if existing is not None and (existing.kind != DIRECTORY or kind != DIRECTORY):
                self._remove(real)
                existing = None
            if earlier is not None and kind in (REGULAR, HARDLINK):
                self._history[real] = earlier
            if kind == HARDLINK:
                target = self._resolve(link, follow_final=False)
                tnode = self._nodes.get(target) if target is not None else None
                if tnode is None or tnode.kind != REGULAR:
                    kind, link = OTHER, ""
                else:
                    kind, link, size = REGULAR, "", tnode.size
                    if target in self._contents and path not in rec.contents:
                        self._contents[real] = self._contents[target]
                        self._history.setdefault(real, []).append((i, self._contents[target]))
            if existing is not None:  # a directory over a directory keeps its children
                existing.layer = i
            else:
                self._nodes[real] = _Node(kind, link, size, i)
                self._children[real_parent].add(real)
                if kind == DIRECTORY:
                    self._children[real] = set()
            data = rec.contents.get(path)
            if data is not None:
                self._contents[real] = data
                self._history.setdefault(real, []).append((i, data))
            elif path in rec.oversized:
                self._oversized[real] = rec.oversized[path]
        self.skipped.extend(rec.skipped)

    # -- resolving ---------------------------------------------------------------------------

    def _resolve(self, path: str, follow_final: bool = True) -> str | None:
        """The real path of ``path`` with symlinks followed; ``..`` and absolute targets stay in the root."""
        queue = [p for p in reversed(path.split("/"))]
        resolved: list[str] = []
        hops = 0
        while queue:
            comp = queue.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, comp])
            node = self._nodes.get(candidate)
            if node is None:
                return None
            if node.kind == SYMLINK and (queue or follow_final):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                if node.link.startswith("/"):
                    resolved = []
                queue.extend(reversed(node.link.split("/")))
                continue
            resolved.append(comp)
        return "/".join(resolved)

    def realpath(self, path: str) -> str | None:
        return self._resolve(path.lstrip("/"))

    def glob(self, pattern: str) -> list[str]:
        prefix, suffix, literal = glob_literals(pattern)
        if literal:
            return [prefix] * ((prefix in self._contents) + (prefix in self._oversized))
        found = [p for p in self._contents if p.startswith(prefix) and p.endswith(suffix)]
        found += [p for p in self._oversized if p.startswith(prefix) and p.endswith(suffix)]
        if not found:  # nothing kept could match: the pattern is not compiled
            return found
        regex = glob_regex(pattern)
        return sorted(p for p in found if regex.match(p))

    def read(self, path: str) -> bytes | None:
        real = self._resolve(path.lstrip("/"))
        return None if real is None else self._contents.get(real)

    def oversized(self, path: str) -> int | None:
        real = self._resolve(path.lstrip("/"))
        return None if real is None else self._oversized.get(real)

    def exists(self, path: str) -> bool:
        return self._resolve(path.lstrip("/")) is not None

    def kind(self, path: str) -> str | None:
        """The kind of the entry itself (symlinks not followed in the last component)."""
        real = self._resolve(path.lstrip("/"), follow_final=False)
        return None if real is None else self._nodes[real].kind

    def location(self, path: str) -> Location:
        real = self._resolve(path.lstrip("/"))
        layer = self._layers[self._nodes[real].layer] if real is not None else None
        return Location("/" + path.lstrip("/"), layer)

    def history(self, path: str) -> list[tuple[str | None, bytes]]:
        real = self._resolve(path.lstrip("/"))
        if real is None:
            return []
        return [(self._layers[i], data) for i, data in self._history.get(real, [])]

    def __len__(self) -> int:
        return len(self._nodes) - 1


def _read_bounded(path: str, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        chunks: list[bytes] = []
        left = size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def directory_records(root: Path, interest: Interest, max_layer_bytes: int = MAX_LAYER_BYTES) -> LayerRecords:
    """The records of a plain directory, as if it were one layer (symlinks are never followed)."""
    if not root.is_dir():
        raise SBOMError(f"{root}: not a directory")
    rec = LayerRecords(None)
    kept = 0
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel) if rel else root)
        except OSError as exc:
            rec.skipped.append(f"{rel}: {exc.strerror}")
            continue
        with it:
            for ent in sorted(it, key=lambda e: e.name):
                path = f"{rel}/{ent.name}" if rel else ent.name
                try:
                    st = ent.stat(follow_symlinks=False)
                except OSError as exc:
                    rec.skipped.append(f"{path}: {exc.strerror}")
                    continue
                if stat.S_ISDIR(st.st_mode):
                    rec.entries.append((path, DIRECTORY, "", 0))
                    stack.append(path)
                elif stat.S_ISLNK(st.st_mode):
                    try:
                        link = os.readlink(ent.path)
                    except OSError:
                        link = ""
                    rec.entries.append((path, SYMLINK, link, 0))
                elif stat.S_ISREG(st.st_mode):
                    rec.entries.append((path, REGULAR, "", st.st_size))
                    extractor = None if interest.matches(path) else interest.extractor_for(path, st.st_mode)
                    if extractor is not None:
                        if st.st_size > extractor.max_bytes:
                            rec.oversized[path] = st.st_size
                            continue
                        try:
                            derived = extractor.extract(_read_bounded(ent.path, st.st_size))
                        except OSError as exc:
                            rec.skipped.append(f"{path}: {exc.strerror}")
                            continue
                        if derived is not None and kept + len(derived) <= max_layer_bytes:
                            rec.contents[path] = derived
                            kept += len(derived)
                        continue
                    if interest.matches(path):
                        if st.st_size > interest.max_file_bytes or kept + st.st_size > max_layer_bytes:
                            rec.oversized[path] = st.st_size
                            continue
                        try:
                            rec.contents[path] = _read_bounded(ent.path, st.st_size)
                        except OSError as exc:
                            if exc.errno not in (errno.ELOOP, errno.EACCES, errno.ENOENT):
                                raise SBOMError(f"{ent.path}: {exc.strerror}") from exc
                            rec.skipped.append(f"{path}: {exc.strerror}")
                            continue
                        kept += st.st_size
                else:
                    rec.entries.append((path, OTHER, "", 0))
    return rec


class DirectoryResolver(Filesystem):
    """A plain directory (an unpacked rootfs) served through the same ``Resolver`` protocol."""

    def __init__(self, root: Path, interest: Interest) -> None:
        self.root = root
        super().__init__([directory_records(root, interest)])
