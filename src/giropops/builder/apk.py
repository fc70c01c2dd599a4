"""APK repositories the apko way (Wolfi, Alpine): signed APKINDEX, resolution, unpack, installed db.

An APK v2 file — package or ``APKINDEX.tar.gz`` — is concatenated gzip
streams: a signature tar segment (``.SIGN.RSA.<key>`` = RSA PKCS#1 v1.5 over
SHA-1, or ``.SIGN.RSA256.<key>`` over SHA-256), then the control segment the
signature covers (``.PKGINFO``, or ``DESCRIPTION`` + ``APKINDEX``), then for a
package the data segment.  Trust chain:

1. ``APKINDEX.tar.gz`` must carry a valid signature by a key of
   ``contents.keyring`` (the key is looked up by the file name in the
   signature entry, as apk does).
2. A package's control segment must hash (SHA-1, ``Q1`` base64) to the ``C:``
   checksum the signed index lists, and its signature must verify too.
3. The data segment must hash (SHA-256) to ``datahash`` in the verified
   ``.PKGINFO``.

Dependencies: names with version constraints and the ``so:``, ``cmd:`` and
``pc:`` namespaces, resolved through ``provides`` (``p:``); ``!conflicts`` are
ignored (a fresh root has nothing to conflict with).  The packages are
recorded in ``/lib/apk/db/installed`` with their files, as apk writes it, so
scanners see them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from giropops.builder.cache import Cache, fetch
from giropops.builder.errors import IntegrityError, PackageError, RepositoryError, ResolveError, SignatureError
from giropops.builder.layer import FILE, PathFilter, Tree
from giropops.progress import NO_PROGRESS, Progress

MAX_INDEX = 64 << 20
MAX_APK = 512 << 20


# --------------------------------------------------------------------------- versions

_SUFFIX_ORDER = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "": 0, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}
_VER_RE = re.compile(
    r"^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:~[0-9a-f]+)?(?:-r(\d+))?$"
)


def _version_key(v: str) -> tuple[object, ...]:
    m = _VER_RE.match(v)
    if not m:
        return ((), 0, (), 0, v)
    nums = tuple(int(x) for x in m.group(1).split("."))
    letter = ord(m.group(2)) if m.group(2) else 0
    suffixes = tuple(
        (_SUFFIX_ORDER[s.rstrip("0123456789")], int(s[len(s.rstrip("0123456789")):] or 0))
        for s in m.group(3).split("_")[1:]
    ) or ((0, 0),)
    return (nums, letter, suffixes, int(m.group(4) or 0), "")


def compare_versions(a: str, b: str) -> int:
    ka, kb = _version_key(a), _version_key(b)
    return (ka > kb) - (ka < kb)


def satisfies(version: str, op: str, want: str) -> bool:
    c = compare_versions(version, want)
    if op == "~":
        return version == want or version.startswith(want + ".") or version.startswith(want + "-")
    return {"=": c == 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0, "><": c != 0}.get(op, False)


# --------------------------------------------------------------------------- streams


def gzip_segments(data: bytes, what: str) -> list[tuple[bytes, bytes]]:
    """Split concatenated gzip streams: [(compressed bytes, decompressed bytes), ...]."""
    out: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = d.decompress(data[pos:], MAX_APK)
        except zlib.error as exc:
            raise PackageError(f"{what}: corrupt gzip stream {len(out) + 1}: {exc}") from exc
        if not d.eof:
            raise PackageError(f"{what}: gzip stream {len(out) + 1} is truncated or too large")
        used = len(data) - pos - len(d.unused_data)
        out.append((data[pos : pos + used], raw))
        pos += used
    return out


def _tar_members(raw: bytes, what: str) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """Members of a tar segment that may lack end-of-archive blocks (abuild cuts them)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw + b"\0" * 1024), mode="r:") as tf:
            for m in tf:
                f = tf.extractfile(m) if m.isreg() else None
                yield m, (f.read() if f is not None else b"")
    except tarfile.TarError as exc:
        raise PackageError(f"{what}: corrupt tar segment: {exc}") from exc


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, rsa.RSAPublicKey]

    @classmethod
    def load(cls, entries: Sequence[str], base: Path | None = None) -> Keyring:
        keys: dict[str, rsa.RSAPublicKey] = {}
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if re.match(r"^https?://", entry):
                pem = fetch(entry, 1 << 16, f"keyring {name}")
            else:
                path = Path(entry.removeprefix("file://"))
                if base is not None and not path.is_absolute():
                    path = base / path
                try:
                    pem = path.read_bytes()
                except OSError as exc:
                    raise SignatureError(f"contents.keyring: cannot read {entry}: {exc}") from exc
            try:
                key = serialization.load_pem_public_key(pem)
            except ValueError as exc:
                raise SignatureError(f"contents.keyring: {name} is not a PEM public key") from exc
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError(f"contents.keyring: {name} is not an RSA key")
            keys[name] = key
        return cls(keys)

    def verify(self, sig_segment: bytes, signed: bytes, what: str) -> str:
        """Verify the signature tar segment over ``signed``; returns the key name or raises."""
        names = []
        for m, body in _tar_members(sig_segment, what):
            names.append(m.name)
            mm = re.fullmatch(r"\.SIGN\.(RSA|RSA256)\.(.+)", m.name)
            if not mm:
                continue
            algo = hashes.SHA1() if mm.group(1) == "RSA" else hashes.SHA256()  # noqa: S303 - APK v2 format
            key = self.keys.get(mm.group(2))
            if key is None:
                continue
            try:
                key.verify(body, signed, padding.PKCS1v15(), algo)
            except InvalidSignature as exc:
                raise SignatureError(f"{what}: signature by {mm.group(2)} does not verify") from exc
            return mm.group(2)
        raise SignatureError(
            f"{what}: no signature by a trusted key (signed by: {', '.join(names) or 'nobody'}; "
            f"trusted: {', '.join(sorted(self.keys)) or 'none'})"
        )


# --------------------------------------------------------------------------- index


@dataclass
class ApkPackage:
    name: str
    version: str
    arch: str
    checksum: str  # "Q1<base64 sha1 of the control segment>"
    depends: list[str]
    provides: list[str]
    repo: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


def parse_apkindex(text: str, repo: str, what: str) -> list[ApkPackage]:
    pkgs: list[ApkPackage] = []
    for block in re.split(r"\n\s*\n", text):
        f: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) >= 2 and line[1] == ":":
                f[line[0]] = line[2:]
        if not f:
            continue
        name, ver, csum = f.get("P", ""), f.get("V", ""), f.get("C", "")
        if not name or not ver or not csum.startswith("Q1"):
            raise RepositoryError(f"{what}: entry {name or '?'} lacks P:, V: or a Q1 C: checksum")
        if "/" in name or name.startswith(".") or "/" in ver:
            raise RepositoryError(f"{what}: hostile package name {name!r} {ver!r}")
        pkgs.append(ApkPackage(name, ver, f.get("A", ""), csum, f.get("D", "").split(), f.get("p", "").split(),
                               repo, f))
    return pkgs


_DEP_RE = re.compile(r"^([^<>=~]+)(?:(>=|<=|><|=|<|>|~)(.+))?$")


def _parse_dep(dep: str) -> tuple[str, str | None, str | None]:
    m = _DEP_RE.match(dep)
    if not m:
        raise ResolveError(f"cannot parse APK dependency {dep!r}")
    return m.group(1), m.group(2), m.group(3)


class ApkRepositories:
    def __init__(
        self,
        repositories: Sequence[str],
        keyring: Sequence[str],
        arch: str,
        cache: Cache,
        progress: Progress = NO_PROGRESS,
        keyring_base: Path | None = None,
    ) -> None:
        from giropops.builder.spec import APK_ARCH

        self.repositories = [r.rstrip("/") for r in repositories]
        self.arch = APK_ARCH.get(arch, arch)
        self.cache = cache
        self.progress = progress
        self.keyring = Keyring.load(keyring, keyring_base)
        self._packages: list[ApkPackage] | None = None

    def packages(self) -> list[ApkPackage]:
        if self._packages is None:
            pkgs: list[ApkPackage] = []
            for repo in self.repositories:
                what = f"{repo}/{self.arch}/APKINDEX.tar.gz"
                data = fetch(f"{repo}/{self.arch}/APKINDEX.tar.gz", MAX_INDEX, what)
                segs = gzip_segments(data, what)
                if len(segs) < 2:
                    raise SignatureError(f"{what}: unsigned index (no signature segment)")
                self.keyring.verify(segs[0][1], segs[1][0], what)
                index = next((b for m, b in _tar_members(segs[1][1], what) if m.name == "APKINDEX"), None)
                if index is None:
                    raise RepositoryError(f"{what}: no APKINDEX inside")
                pkgs += parse_apkindex(index.decode("utf-8", errors="replace"), repo, what)
            self._packages = pkgs
        return self._packages

    def resolve(self, request: Sequence[str]) -> list[ApkPackage]:
        by_name: dict[str, list[ApkPackage]] = {}
        providers: dict[str, list[tuple[ApkPackage, str | None]]] = {}
        for p in self.packages():
            if p.arch not in (self.arch, "noarch"):
                continue
            by_name.setdefault(p.name, []).append(p)
            for prov in p.provides:
                n, _op, v = _parse_dep(prov)
                providers.setdefault(n, []).append((p, v))
        chosen: dict[str, ApkPackage] = {}
        provided: dict[str, list[str | None]] = {}

        def best(cands: list[ApkPackage]) -> ApkPackage:
            top = cands[0]
            for c in cands[1:]:
                if compare_versions(c.version, top.version) > 0:
                    top = c
            return top

        def find(dep: str, who: str) -> ApkPackage | None:
            name, op, ver = _parse_dep(dep)
            if name in chosen and (op is None or satisfies(chosen[name].version, op, ver or "")):
                return None
            if name in provided and (op is None or any(v and satisfies(v, op, ver or "") for v in provided[name])):
                return None
            cands = [p for p in by_name.get(name, []) if op is None or satisfies(p.version, op, ver or "")]
            if cands:
                return best(cands)
            provs = [p for p, v in providers.get(name, []) if op is None or (v and satisfies(v, op, ver or ""))]
            if provs:
                prio = max(int(p.fields.get("k", "0") or 0) for p in provs)
                return best([p for p in provs if int(p.fields.get("k", "0") or 0) == prio])
            raise ResolveError(f"{who} needs {dep}, which no configured APK repository provides")

        queue: list[ApkPackage] = []
        for dep in request:
            want = find(dep, "the spec")
            if want is not None and want.name not in chosen:
                chosen[want.name] = want
                queue.append(want)
                for prov in want.provides:
                    n, _op, v = _parse_dep(prov)
                    provided.setdefault(n, []).append(v)
        while queue:
            pkg = queue.pop(0)
            for dep in pkg.depends:
                if dep.startswith("!"):
                    continue
                need = find(dep, f"{pkg.name}-{pkg.version}")
                if need is None or need.name in chosen:
                    continue
                chosen[need.name] = need
                queue.append(need)
                for prov in need.provides:
                    n, _op, v = _parse_dep(prov)
                    provided.setdefault(n, []).append(v)
        return sorted(chosen.values(), key=lambda p: p.name)

    def download(self, pkg: ApkPackage) -> bytes:
        sha1 = base64.b64decode(pkg.checksum[2:])
        what = pkg.filename
        url = f"{pkg.repo}/{self.arch}/{pkg.filename}"
        key = f"apk-{sha1.hex()}"
        cached = self.cache.get_json("apk", key)
        if isinstance(cached, str):
            data = self.cache.get_blob(cached)
            if data is not None:
                return data
        data = fetch(url, MAX_APK, what)
        segs = gzip_segments(data, what)
        if len(segs) != 3:
            raise PackageError(f"{what}: expected 3 gzip streams (signature, control, data), found {len(segs)}")
        if hashlib.sha1(segs[1][0]).digest() != sha1:  # noqa: S324 - the APK v2 checksum is SHA-1
            raise IntegrityError(f"{what}: control segment does not match the checksum in the signed APKINDEX")
        self.keyring.verify(segs[0][1], segs[1][0], what)
        info = _pkginfo(segs[1][1], what)
        datahash = info.get("datahash", "")
        if not datahash:
            raise PackageError(f"{what}: .PKGINFO has no datahash")
        if hashlib.sha256(segs[2][0]).hexdigest() != datahash:
            raise IntegrityError(f"{what}: data segment does not match the datahash of its signed .PKGINFO")
        self.cache.put_json("apk", key, self.cache.put_blob(data))
        return data


def _pkginfo(raw: bytes, what: str) -> dict[str, str]:
    for m, body in _tar_members(raw, what):
        if m.name == ".PKGINFO":
            info: dict[str, str] = {}
            for line in body.decode("utf-8", errors="replace").splitlines():
                k, sep, v = line.partition(" = ")
                if sep and not k.startswith("#"):
                    info.setdefault(k.strip(), v.strip())
            return info
    raise PackageError(f"{what}: no .PKGINFO")


def install(data: bytes, pkg: ApkPackage, tree: Tree, path_filter: PathFilter | None) -> str:
    """Unpack a verified package into ``tree``; returns its /lib/apk/db/installed block."""
    segs = gzip_segments(data, pkg.filename)
    data_tar = segs[2][1]
    added = tree.add_tar(data_tar + b"\0" * 1024, pkg.filename, path_filter)
    lines = [f"C:{pkg.checksum}", f"P:{pkg.name}", f"V:{pkg.version}", f"A:{pkg.arch}"]
    for k in ("S", "I", "T", "U", "L", "o", "m", "t", "c"):
        if pkg.fields.get(k):
            lines.append(f"{k}:{pkg.fields[k]}")
    if pkg.depends:
        lines.append("D:" + " ".join(pkg.depends))
    if pkg.provides:
        lines.append("p:" + " ".join(pkg.provides))
    by_dir: dict[str, list[str]] = {}
    for path in added:
        d, _, base = path.rpartition("/")
        by_dir.setdefault(d, []).append(base)
    for d in sorted(by_dir):
        if d:
            lines.append(f"F:{d}")
        for base in sorted(by_dir[d]):
            full = f"{d}/{base}" if d else base
            e = tree.entries.get(full)
            lines.append(f"R:{base}")
            if e is not None and e.kind == FILE:
                lines.append("Z:Q1" + base64.b64encode(hashlib.sha1(e.data).digest()).decode())  # noqa: S324
    return "\n".join(lines) + "\n\n"
