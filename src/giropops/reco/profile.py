"""What the recommendations compare: an image's size, packages, OS, runtime and vulnerabilities.

A ``Profile`` is computed once per manifest digest and vulnerability database (the scan is
the expensive part): ``Profiler`` keeps them in memory and, when given a directory, on disk
as small JSON files, so a tag seen again — or another tag of the same digest — costs a
manifest request, not a scan.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.cachedir import cache_root
from giropops.fileio import atomic_write
from giropops.oci.image import Image, compressed_size
from giropops.reco import deps
from giropops.sbom.model import SBOM, Package
from giropops.vuln.model import SEVERITIES, FindingBrief

_CACHE_VERSION = "2"  # 2: vendor severities, negligible, disputed findings left out

#: Environment variables official runtime images set to the version they carry.
RUNTIME_ENV = {
    "PYTHON_VERSION": "python",
    "NODE_VERSION": "node",
    "GOLANG_VERSION": "go",
    "JAVA_VERSION": "java",
    "RUBY_VERSION": "ruby",
    "PHP_VERSION": "php",
}
#: Package names that carry a runtime: (type, regex) -> runtime name; group "v" may hold the version.
RUNTIME_PACKAGES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("deb", re.compile(r"^python(?P<v>3\.\d+)$"), "python"),
    ("apk", re.compile(r"^python-(?P<v>3\.\d+)$"), "python"),
    ("apk", re.compile(r"^python3$"), "python"),
    ("deb", re.compile(r"^nodejs$"), "node"),
    ("apk", re.compile(r"^nodejs(?:-(?P<v>\d+))?$"), "node"),
    ("deb", re.compile(r"^openjdk-(?P<v>\d+)-jre(?:-headless)?$"), "java"),
    ("apk", re.compile(r"^openjdk-(?P<v>\d+)(?:-jre)?$"), "java"),
    ("deb", re.compile(r"^golang-(?P<v>1\.\d+)-go$"), "go"),
    ("apk", re.compile(r"^go-(?P<v>1\.\d+)$"), "go"),
)
_LEADING_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")


def version_tuple(text: str) -> tuple[int, ...]:
    """The leading dotted numbers of a version (``3.11.4-slim`` -> (3, 11, 4)); () when there are none."""
    m = _LEADING_VERSION.match(text)
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


@dataclass(frozen=True)
class Runtime:
    name: str  # "python", "node", "java", "go", ...
    version: str  # "3.11.4" (as precise as the source says)
    source: str  # where it was read: "ENV PYTHON_VERSION", "package python3.11"

    @property
    def parts(self) -> tuple[int, ...]:
        return version_tuple(self.version)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


def _upstream(version: str) -> str:
    v = version.split(":", 1)[1] if re.match(r"^\d+:", version) else version
    return v.split("-", 1)[0].split("+", 1)[0].split("~", 1)[0]


def detect_runtime(env: Sequence[str], packages: Sequence[Package]) -> Runtime | None:
    for item in env:
        key, _, value = item.partition("=")
        if key in RUNTIME_ENV and version_tuple(value.strip()):
            return Runtime(RUNTIME_ENV[key], value.strip(), f"ENV {key}")
    for pkg in sorted(packages, key=Package.sort_key):
        for ptype, pattern, runtime in RUNTIME_PACKAGES:
            if pkg.type != ptype:
                continue
            m = pattern.match(pkg.name)
            if m is None:
                continue
            upstream = _upstream(pkg.version)
            if not version_tuple(upstream):
                continue
            return Runtime(runtime, upstream, f"package {pkg.name}")
    return None


@dataclass(frozen=True)
class Profile:
    name: str
    digest: str
    platform: str
    created: str | None
    size: int  # compressed: config + layers, what a pull downloads
    packages: int
    os: str | None  # "Debian GNU/Linux 12 (bookworm)"
    os_id: str | None  # "debian", "alpine", "wolfi"
    os_version: str | None
    runtime: Runtime | None
    user: str
    vulnerabilities: tuple[FindingBrief, ...]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for v in self.vulnerabilities:
            out[v.severity if v.severity in out else "unspecified"] += 1
        return out

    @property
    def total(self) -> int:
        return len(self.vulnerabilities)

    def keys(self) -> set[tuple[str, str, str]]:
        return {v.key for v in self.vulnerabilities}

    def renamed(self, name: str) -> Profile:
        return Profile(name, self.digest, self.platform, self.created, self.size, self.packages, self.os,
                       self.os_id, self.os_version, self.runtime, self.user, self.vulnerabilities)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["runtime"] = asdict(self.runtime) if self.runtime else None
        out["vulnerabilities"] = [asdict(v) for v in self.vulnerabilities]
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Profile:
        rt = obj.get("runtime")
        return cls(
            name=str(obj["name"]), digest=str(obj["digest"]), platform=str(obj["platform"]),
            created=obj.get("created"), size=int(obj["size"]), packages=int(obj["packages"]),
            os=obj.get("os"), os_id=obj.get("os_id"), os_version=obj.get("os_version"),
            runtime=Runtime(str(rt["name"]), str(rt["version"]), str(rt["source"])) if rt else None,
            user=str(obj.get("user", "")),
            vulnerabilities=tuple(FindingBrief(**v) for v in obj["vulnerabilities"]),
        )


def profile_of(name: str, image: Image, sbom: SBOM, vulnerabilities: Sequence[FindingBrief]) -> Profile:
    distro = sbom.distro
    os_name: str | None = None
    if distro is not None:
        os_name = distro.pretty_name or " ".join(p for p in (distro.id, distro.version_id) if p)
    return Profile(
        name=name,
        digest=str(image.digest),
        platform=str(image.config.platform),
        created=image.config.created,
        size=compressed_size(image),
        packages=len(sbom.packages),
        os=os_name,
        os_id=distro.id if distro else None,
        os_version=distro.version_id if distro else None,
        runtime=detect_runtime(image.config.env, sbom.packages),
        user=image.config.user,
        vulnerabilities=tuple(vulnerabilities),
    )


def default_cache_dir() -> Path:
    """``$GIROPOPS_CACHE_DIR/reco``, else ``$XDG_CACHE_HOME/giropops/reco`` (``~/.cache`` by default)."""
    return cache_root() / "reco"


class Profiler:
    """Profiles by manifest digest: scanned once per digest and database, then cached.

    ``scanned`` lists the digests actually cataloged and scanned by this object, in order
    (what the cache saved is visible, and testable, from the outside).
    """

    def __init__(self, db: Any, cache_dir: Path | None = None, severity_source: str = "vendor") -> None:
        self._db = db
        self._db_id = f"{deps.db_identity(db)}\n{severity_source}"
        self._severity_source = severity_source
        self._cache_dir = cache_dir
        self._memory: dict[str, Profile] = {}
        self.scanned: list[str] = []

    def _key(self, digest: str) -> str:
        return hashlib.sha256(f"{_CACHE_VERSION}\n{digest}\n{self._db_id}".encode()).hexdigest()

    def _load(self, digest: str) -> Profile | None:
        if self._cache_dir is None:
            return None
        path = self._cache_dir / f"{self._key(digest)}.json"
        try:
            obj = jsonio.loads(path.read_bytes(), str(path))
            profile = Profile.from_json(obj)
        except (OSError, jsonio.DocumentError, ValueError, KeyError, TypeError):
            return None  # a cache miss, never an error
        return profile if profile.digest == digest else None

    def _store(self, profile: Profile) -> None:
        if self._cache_dir is None:
            return
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self._cache_dir / f"{self._key(profile.digest)}.json",
                         json.dumps(profile.to_json()).encode(), 0o600)
        except OSError:
            return  # the cache is an optimisation

    def profile(self, name: str, image: Image) -> Profile:
        digest = str(image.digest)
        got = self._memory.get(digest) or self._load(digest)
        if got is None:
            sbom = deps.sbom_of(image, name)
            got = profile_of(name, image, sbom, deps.scan(sbom, self._db, self._severity_source))
            self.scanned.append(digest)
            self._store(got)
        self._memory[digest] = got
        return got.renamed(name)
