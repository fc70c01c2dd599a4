"""A verifying Debian repository client and a distroless-style dependency resolver.

Chain of trust, as apt does it:

1. ``dists/<suite>/InRelease`` is verified with ``gpgv`` against the Debian
   archive keyring.  Only the text *gpgv outputs* (the signed part) is parsed,
   never the file as downloaded, so nothing outside the signature can sneak in.
   ``gpgv`` is the verifier apt itself uses; Python OpenPGP libraries are either
   unmaintained (PGPy) or bindings to GnuPG anyway.
2. ``Packages.xz``/``.gz`` must match the size and SHA-256 the Release lists.
3. Each ``.deb`` must match the size and SHA-256 its ``Packages`` entry lists.

The mirror comes from the spec or from this machine's apt sources (deb822
``*.sources`` files or the one-line ``sources.list``); no host name is built in.

Resolution follows ``Depends`` and ``Pre-Depends`` (alternatives, virtual
packages through ``Provides``, version constraints, ``:any`` qualifiers), picks
the highest version across all configured suites (so security updates win), and
never pulls in the packages of ``DEFAULT_EXCLUDES``: they exist to run
maintainer scripts or to be a shell, which a distroless image does not do.  A
package named explicitly in the request is never excluded.
"""

from __future__ import annotations

import email.utils
import gzip
import io
import lzma
import re
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from giropops.builder.cache import Cache, fetch, key_of
from giropops.builder.errors import PackageError, RepositoryError, ResolveError, SignatureError
from giropops.progress import NO_PROGRESS, Progress

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# Never installed unless asked for by name.  They are the shell, the package
# manager and what only maintainer scripts use (debconf is perl).  Dependency
# clauses naming them are dropped, which is what distroless does.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "bash",
    "dash",
    "coreutils",
    "debconf",
    "debconf-2.0",
    "debianutils",
    "dpkg",
    "init-system-helpers",
    "install-info",
    "libc-bin",
    "mawk",
    "awk",
    "openssl",
    "perl",
    "perl-base",
    "sensible-utils",
    "usrmerge",
    "usr-is-merged",
    "cdebconf",
)

MAX_INRELEASE = 4 << 20
MAX_INDEX = 256 << 20
MAX_DEB = 512 << 20


# --------------------------------------------------------------------------- versions


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(v: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in v:
        e, _, v = v.partition(":")
        epoch = int(e) if e.isdigit() else 0
    upstream, sep, rev = v.rpartition("-")
    if not sep:
        upstream, rev = v, ""
    return epoch, upstream, rev


def compare_versions(a: str, b: str) -> int:
    """Negative, zero or positive as Debian version ``a`` sorts before, equal to or after ``b``."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return ea - eb
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


def satisfies(version: str, op: str, want: str) -> bool:
    c = compare_versions(version, want)
    return {
        "<<": c < 0,
        "<=": c <= 0,
        "=": c == 0,
        ">=": c >= 0,
        ">>": c > 0,
        "<": c <= 0,  # obsolete spellings, as dpkg reads them
        ">": c >= 0,
    }.get(op, False)


# --------------------------------------------------------------------------- deb822


def parse_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs; continuation lines are joined with newlines."""
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            if line[0] in " \t":
                if last is not None:
                    fields[last] += "\n" + line
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            last = name.strip()
            fields[last] = value.strip()
        if fields:
            yield fields


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    components: tuple[str, ...]
    keyring: Path = DEFAULT_KEYRING


def apt_sources(sources_dir: Path = APT_SOURCES_DIR, sources_list: Path = APT_SOURCES_LIST) -> list[Source]:
    """The ``deb`` sources this machine's apt uses (deb822 files first, then sources.list)."""
    out: list[Source] = []
    files = sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else []
    for path in files:
        for para in parse_paragraphs(path.read_text(errors="replace")):
            if "deb" not in para.get("Types", "").split() or para.get("Enabled", "yes").lower() == "no":
                continue
            keyring = Path(para["Signed-By"]) if para.get("Signed-By", "").startswith("/") else DEFAULT_KEYRING
            comps = tuple(para.get("Components", "").split())
            for uri in para.get("URIs", "").split():
                for suite in para.get("Suites", "").split():
                    out.append(Source(uri.rstrip("/"), suite, comps, keyring))
    lists = [sources_list] + (sorted(sources_dir.glob("*.list")) if sources_dir.is_dir() else [])
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # type: ignore[assignment]
            if len(line) >= 3 and line[0] == "deb":
                out.append(Source(line[1].rstrip("/"), line[2], tuple(line[3:])))
    if not out:
        raise RepositoryError("no Debian sources found in this machine's apt configuration; set debian.mirror")
    return out


# --------------------------------------------------------------------------- index


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    depends: str
    pre_depends: str
    provides: str
    filename: str
    sha256: str
    size: int
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.filename}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name, "version": self.version, "arch": self.arch, "depends": self.depends,
            "pre_depends": self.pre_depends, "provides": self.provides, "filename": self.filename,
            "sha256": self.sha256, "size": self.size, "base_url": self.base_url,
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> DebPackage:
        return cls(**obj)  # type: ignore[arg-type]


@dataclass
class Release:
    source: Source
    fields: dict[str, str]
    sha256: dict[str, tuple[str, int]]


def verify_inrelease(data: bytes, keyring: Path, what: str) -> str:
    """The signed text of an InRelease, or ``SignatureError``.  Uses gpgv (what apt uses)."""
    if not keyring.is_file():
        raise SignatureError(f"{what}: keyring {keyring} not found (install debian-archive-keyring)")
    with tempfile.TemporaryDirectory(prefix="giropops-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        out = Path(tmp) / "out"
        try:
            proc = subprocess.run(
                ["gpgv", "--quiet", "--status-fd", "1", "--keyring", str(keyring), "--output", str(out), str(signed)],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except FileNotFoundError as exc:
            raise SignatureError("gpgv is not installed (apt install gpgv)") from exc
        status = proc.stdout.decode(errors="replace")
        if proc.returncode != 0 or "[GNUPG:] GOODSIG" not in status or "[GNUPG:] VALIDSIG" not in status:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()
            raise SignatureError(
                f"{what}: OpenPGP signature does not verify against {keyring.name}"
                + (f" ({reason[-1]})" if reason else "")
            )
        for bad in ("EXPKEYSIG", "REVKEYSIG", "BADSIG", "ERRSIG"):
            if f"[GNUPG:] {bad}" in status:
                raise SignatureError(f"{what}: signature status {bad}")
        return out.read_bytes().decode("utf-8", errors="replace")


def _parse_release(text: str, source: Source, what: str) -> Release:
    paras = list(parse_paragraphs(text))
    if not paras:
        raise RepositoryError(f"{what}: empty Release")
    fields = paras[0]
    names = {fields.get("Suite"), fields.get("Codename")}
    if source.suite not in names:
        raise SignatureError(
            f"{what}: signed Release is for suite {fields.get('Suite')!r}/{fields.get('Codename')!r}, "
            f"not {source.suite!r}"
        )
    valid_until = fields.get("Valid-Until")
    if valid_until:
        parsed = email.utils.parsedate_to_datetime(valid_until)
        if parsed.timestamp() < time.time():
            raise SignatureError(f"{what}: Release expired on {valid_until} (replayed or stale mirror)")
    sums: dict[str, tuple[str, int]] = {}
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sums[parts[2]] = (parts[0].lower(), int(parts[1]))
    if not sums:
        raise RepositoryError(f"{what}: Release has no SHA256 list")
    return Release(source, fields, sums)


def fetch_release(source: Source) -> Release:
    what = f"{source.uri} {source.suite}"
    data = fetch(f"{source.uri}/dists/{source.suite}/InRelease", MAX_INRELEASE, f"InRelease of {what}")
    text = verify_inrelease(data, source.keyring, f"InRelease of {what}")
    return _parse_release(text, source, what)


def _decompress_index(name: str, data: bytes, what: str) -> str:
    try:
        if name.endswith(".xz"):
            raw = lzma.decompress(data)
        elif name.endswith(".gz"):
            raw = gzip.decompress(data)
        else:
            raw = data
    except (lzma.LZMAError, OSError, EOFError, zlib.error) as exc:
        raise RepositoryError(f"{what}: cannot decompress {name}: {exc}") from exc
    return raw.decode("utf-8", errors="replace")


_WANTED = ("Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides", "Filename", "SHA256", "Size")


def parse_packages(text: str, base_url: str, what: str) -> list[DebPackage]:
    out: list[DebPackage] = []
    for block in text.split("\n\n"):
        f: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line[0] in " \t":
                continue
            name, sep, value = line.partition(":")
            if sep and name in _WANTED:
                f[name] = value.strip()
        if not f:
            continue
        name = f.get("Package", "")
        sha = f.get("SHA256", "").lower()
        fn = f.get("Filename", "")
        if not name or not re.fullmatch(r"[0-9a-f]{64}", sha) or not fn or not f.get("Size", "").isdigit():
            raise RepositoryError(f"{what}: entry {name or '?'} lacks Package/Filename/SHA256/Size")
        if fn.startswith("/") or ".." in fn.split("/"):
            raise RepositoryError(f"{what}: entry {name} has a hostile Filename {fn!r}")
        out.append(
            DebPackage(
                name, f.get("Version", ""), f.get("Architecture", ""), f.get("Depends", ""),
                f.get("Pre-Depends", ""), f.get("Provides", ""), fn, sha, int(f["Size"]), base_url,
            )
        )
    return out


def _index_path(release: Release, component: str, arch: str) -> tuple[str, str, int]:
    for ext in (".xz", ".gz", ""):
        path = f"{component}/binary-{arch}/Packages{ext}"
        if path in release.sha256:
            sha, size = release.sha256[path]
            return path, sha, size
    raise RepositoryError(
        f"{release.source.uri} {release.source.suite}: no {component}/binary-{arch}/Packages in the Release"
    )


# --------------------------------------------------------------------------- resolution

_DEP_RE = re.compile(r"^\s*([a-z0-9][a-z0-9+.\-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?")


@dataclass(frozen=True)
class Relation:
    name: str
    op: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.op} {self.version})" if self.op else self.name


def parse_relations(text: str) -> list[list[Relation]]:
    """``a (>= 1) | b, c`` -> [[a>=1, b], [c]]; architecture restrictions ``[...]`` are ignored."""
    clauses: list[list[Relation]] = []
    for clause in text.split(","):
        alts: list[Relation] = []
        for alt in clause.split("|"):
            alt = re.sub(r"\[[^]]*\]|<[^>]*>", "", alt).strip()
            if not alt:
                continue
            m = _DEP_RE.match(alt)
            if not m:
                raise ResolveError(f"cannot parse dependency {alt!r}")
            alts.append(Relation(m.group(1), m.group(2), m.group(3)))
        if alts:
            clauses.append(alts)
    return clauses


@dataclass
class Universe:
    """Every candidate package of the configured suites, by name and by what it provides."""

    arch: str
    packages: dict[str, list[DebPackage]] = field(default_factory=dict)
    providers: dict[str, list[tuple[DebPackage, str | None]]] = field(default_factory=dict)

    def add(self, pkgs: Iterable[DebPackage]) -> None:
        for p in pkgs:
            if p.arch not in (self.arch, "all"):
                continue
            self.packages.setdefault(p.name, []).append(p)
            for rels in parse_relations(p.provides) if p.provides else []:
                r = rels[0]
                self.providers.setdefault(r.name, []).append((p, r.version if r.op == "=" else None))

    def best(self, rel: Relation) -> DebPackage | None:
        cands = [
            p
            for p in self.packages.get(rel.name, [])
            if rel.op is None or satisfies(p.version, rel.op, rel.version or "")
        ]
        if not cands:
            return None
        best = cands[0]
        for p in cands[1:]:
            if compare_versions(p.version, best.version) > 0:
                best = p
        return best


@dataclass(frozen=True)
class Resolution:
    packages: tuple[DebPackage, ...]
    dropped: tuple[str, ...]  # "pkg: clause" for clauses dropped because of an exclusion


def resolve(universe: Universe, request: Sequence[str], exclude: Iterable[str]) -> Resolution:
    excluded = set(exclude) - set(request)
    chosen: dict[str, DebPackage] = {}
    provided: dict[str, list[tuple[DebPackage, str | None]]] = {}
    dropped: list[str] = []

    def satisfied(rel: Relation) -> bool:
        p = chosen.get(rel.name)
        if p is not None and (rel.op is None or satisfies(p.version, rel.op, rel.version or "")):
            return True
        for _prov, ver in provided.get(rel.name, []):
            if rel.op is None or (ver is not None and satisfies(ver, rel.op, rel.version or "")):
                return True
        return False

    def choose(p: DebPackage) -> None:
        chosen[p.name] = p
        for rels in parse_relations(p.provides) if p.provides else []:
            r = rels[0]
            provided.setdefault(r.name, []).append((p, r.version if r.op == "=" else None))
        queue.append(p)

    queue: list[DebPackage] = []
    for name in request:
        rel = parse_relations(name)[0][0] if name.strip() else None
        if rel is None:
            continue
        p = universe.best(rel)
        if p is None:
            provs = universe.providers.get(rel.name, [])
            if len(provs) == 1:
                p = provs[0][0]
            elif provs:
                names = ", ".join(sorted({pp.name for pp, _ in provs}))
                raise ResolveError(f"{rel.name} is a virtual package; name one of: {names}")
            else:
                raise ResolveError(f"package {rel} not found in the configured Debian suites")
        if p.name not in chosen:
            choose(p)

    while queue:
        pkg = queue.pop(0)
        for text in (pkg.pre_depends, pkg.depends):
            for alts in parse_relations(text):
                if any(satisfied(r) for r in alts):
                    continue
                if any(r.name in excluded for r in alts):
                    dropped.append(f"{pkg.name}: {' | '.join(map(str, alts))}")
                    continue
                pick: DebPackage | None = None
                for r in alts:
                    if r.name in chosen:
                        continue  # present but wrong version: try the next alternative
                    pick = universe.best(r)
                    if pick is not None:
                        break
                    for prov, ver in sorted(universe.providers.get(r.name, []), key=lambda t: t[0].name):
                        if prov.name in excluded:
                            continue
                        if r.op is None or (ver is not None and satisfies(ver, r.op, r.version or "")):
                            pick = universe.best(Relation(prov.name)) or prov
                            break
                    if pick is not None:
                        break
                if pick is None:
                    raise ResolveError(
                        f"{pkg.name} {pkg.version} depends on {' | '.join(map(str, alts))}, "
                        "which no configured suite satisfies"
                    )
                if pick.name in chosen:
                    raise ResolveError(
                        f"{pkg.name} needs {' | '.join(map(str, alts))} but {pick.name} "
                        f"{chosen[pick.name].version} is already selected"
                    )
                choose(pick)
    return Resolution(tuple(sorted(chosen.values(), key=lambda p: p.name)), tuple(dropped))


# --------------------------------------------------------------------------- repository


class DebianRepository:
    """The union of several verified suites for one architecture."""

    def __init__(self, sources: Sequence[Source], arch: str, cache: Cache, progress: Progress = NO_PROGRESS) -> None:
        if not sources:
            raise RepositoryError("no Debian sources configured")
        self.sources = list(sources)
        self.arch = arch
        self.cache = cache
        self.progress = progress
        self._releases: list[Release] | None = None

    def releases(self) -> list[Release]:
        if self._releases is None:
            self._releases = [fetch_release(s) for s in self.sources]
        return self._releases

    def index_ids(self) -> list[str]:
        """SHA-256 of every Packages index in use: the identity of the package universe."""
        ids = []
        for rel in self.releases():
            for comp in rel.source.components:
                ids.append(_index_path(rel, comp, self.arch)[1])
        return ids

    def universe(self) -> Universe:
        uni = Universe(self.arch)
        for rel in self.releases():
            src = rel.source
            for comp in src.components:
                path, sha, size = _index_path(rel, comp, self.arch)
                what = f"{src.uri} {src.suite} {path}"
                url = f"{src.uri}/dists/{src.suite}/{path}"
                if rel.fields.get("Acquire-By-Hash", "").lower() == "yes":
                    url = f"{src.uri}/dists/{src.suite}/{path.rsplit('/', 1)[0]}/by-hash/SHA256/{sha}"
                data = self.cache.fetch_verified(url, sha, size, what, self.progress)
                uni.add(parse_packages(_decompress_index(path, data, what), src.uri, what))
        return uni

    def resolve(self, request: Sequence[str], exclude: Iterable[str]) -> Resolution:
        """Resolution, cached by the identity of the indexes and the request."""
        excl = sorted(set(exclude))
        key = key_of("deb-resolve-v1", self.arch, self.index_ids(), list(request), excl)
        hit = self.cache.get_json("resolve", key)
        if isinstance(hit, dict):
            return Resolution(
                tuple(DebPackage.from_json(p) for p in hit["packages"]), tuple(hit["dropped"])
            )
        res = resolve(self.universe(), request, excl)
        self.cache.put_json(
            "resolve", key, {"packages": [p.to_json() for p in res.packages], "dropped": list(res.dropped)}
        )
        return res

    def download(self, pkg: DebPackage) -> bytes:
        return self.cache.fetch_verified(pkg.url, pkg.sha256, pkg.size, f"{pkg.name}_{pkg.version}.deb", self.progress)


# --------------------------------------------------------------------------- .deb


def read_ar(data: bytes, what: str) -> dict[str, bytes]:
    """Members of an ar archive (the .deb container); ar is simple enough not to need a library."""
    if not data.startswith(b"!<arch>\n"):
        raise PackageError(f"{what}: not an ar archive")
    pos = 8
    members: dict[str, bytes] = {}
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise PackageError(f"{what}: corrupt ar header at offset {pos}")
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        size_text = header[48:58].decode("ascii", errors="replace").strip()
        if not size_text.isdigit():
            raise PackageError(f"{what}: corrupt ar member size at offset {pos}")
        size = int(size_text)
        start = pos + 60
        if start + size > len(data):
            raise PackageError(f"{what}: ar member {name!r} is truncated")
        members[name] = data[start : start + size]
        pos = start + size + (size & 1)
    return members


def _decompress_member(name: str, data: bytes, what: str) -> bytes:
    try:
        if name.endswith(".xz"):
            return lzma.decompress(data)
        if name.endswith(".gz"):
            return gzip.decompress(data)
        if name.endswith(".zst"):
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if name.endswith(".tar"):
            return data
    except (lzma.LZMAError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise PackageError(f"{what}: corrupt {name}: {exc}") from exc
    raise PackageError(f"{what}: unsupported member {name}")


@dataclass(frozen=True)
class DebContents:
    control: str  # the control paragraph
    md5sums: str
    data_tar: bytes  # uncompressed


def open_deb(data: bytes, what: str) -> DebContents:
    members = read_ar(data, what)
    if members.get("debian-binary", b"").strip() != b"2.0":
        raise PackageError(f"{what}: not a Debian 2.0 binary package")
    ctrl_name = next((n for n in members if n.startswith("control.tar")), None)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if ctrl_name is None or data_name is None:
        raise PackageError(f"{what}: missing control.tar or data.tar")
    ctrl_tar = _decompress_member(ctrl_name, members[ctrl_name], what)
    control = md5sums = ""
    try:
        with tarfile.open(fileobj=io.BytesIO(ctrl_tar), mode="r:") as tf:
            for m in tf.getmembers():
                base = m.name.lstrip("./")
                if m.isfile() and base in ("control", "md5sums"):
                    f = tf.extractfile(m)
                    text = f.read(4 << 20).decode("utf-8", errors="replace") if f else ""
                    if base == "control":
                        control = text
                    else:
                        md5sums = text
    except tarfile.TarError as exc:
        raise PackageError(f"{what}: corrupt control.tar: {exc}") from exc
    if not control.strip():
        raise PackageError(f"{what}: no control file")
    return DebContents(control.strip() + "\n", md5sums, _decompress_member(data_name, members[data_name], what))


def status_paragraph(control: str) -> str:
    """The control paragraph as dpkg's status file records an installed package."""
    lines = control.strip().splitlines()
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("Package:"):
            out.append("Status: install ok installed")
    return "\n".join(out) + "\n"
