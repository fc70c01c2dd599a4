"""The demo's steps, as library calls: build, SBOM, scan, compare, sign + verify (running it: ``runtime``).

``giropops demo`` (``giropops.cli.demo``) runs them through ``giropops.demo.flow`` and prints what each
returned; nothing here prints.  Every step writes into one work directory (``DemoPaths``) and returns a
small result the summary is made of, so a test can check each claim against the files on disk.

  build      ``giropops.builder`` (the repository's ``giropops.yaml``) -> an archive and an OCI layout
  sbom       ``giropops.sbom.sbom_for`` (as ``giropops sbom archive://…``) -> SPDX 2.3 and CycloneDX 1.6 JSON
  scan       ``giropops.vuln`` against the local database; ``prepare_db`` first fetches the ecosystems
             the image needs when the database lacks them (``giropops.vuln.db.ensure``, as every scan
             does); a database still missing, empty or incomplete (offline, a failed fetch)
             raises ``DatabaseNotReadyError`` like every scan does (the caller reports that the scan
             could not run and goes on), a stale one comes back as ``ScanSummary.stale``
  compare    the same for the conventional image (``specs/conventional-python3-debian12.yaml``,
             built the same way; the builder's cache makes the second build nearly free)
  sign       ``giropops.sign``: a key pair in the work directory, the layout signed offline as
             ``cosign save`` lays signatures out, then verified with the public key
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from giropops.builder.builder import Builder
from giropops.builder.cache import Cache
from giropops.builder.output import write_output
from giropops.builder.spec import load_spec
from giropops.errors import GiropopsError
from giropops.fileio import atomic_write
from giropops.oci.transport import ArchiveSpec, OCIDirSpec
from giropops.progress import NO_PROGRESS, Progress
from giropops.sbom import SBOM, sbom_for
from giropops.sbom.formats import encode
from giropops.sign.attached import Trust
from giropops.sign.image import sign_image, verify_image
from giropops.sign.keys import SigningKey, VerifyingKey, write_key_pair
from giropops.sign.storage import LayoutStore
from giropops.vuln.db import ensure
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import needed_ecosystems, scan
from giropops.vuln.model import SEVERITIES
from giropops.vuln.report import Format, render
from giropops.vuln.report.view import ReportView
from giropops.vuln.scan import view_for

SPEC_NAME = "giropops.yaml"
CONVENTIONAL_SPEC = Path("specs") / "conventional-python3-debian12.yaml"
DEFAULT_TAG = "localhost/giropops-senhas:demo"
CONVENTIONAL_TAG = "localhost/giropops-senhas:conventional"
DB_STALE_AFTER = timedelta(days=7)
# What a distroless image leaves out on purpose; the summary says which of them each image has.
TOOLS = ("bash", "dash", "apt", "dpkg", "perl-base", "python3-pip")


class DemoError(GiropopsError):
    """A demo step could not do what it claims (the app did not start, the spec is missing...)."""


# --------------------------------------------------------------------------- where things go


@dataclass(frozen=True)
class DemoPaths:
    workdir: Path

    @property
    def archive(self) -> Path:
        return self.workdir / "giropops-senhas.tar"

    @property
    def layout(self) -> Path:
        return self.workdir / "giropops-senhas.oci"

    @property
    def conventional_archive(self) -> Path:
        return self.workdir / "conventional.tar"

    @property
    def spdx(self) -> Path:
        return self.workdir / "giropops-senhas.spdx.json"

    @property
    def cyclonedx(self) -> Path:
        return self.workdir / "giropops-senhas.cdx.json"

    @property
    def cves(self) -> Path:
        return self.workdir / "giropops-senhas.cves.json"

    @property
    def key_prefix(self) -> Path:
        return self.workdir / "cosign"

    @property
    def private_key(self) -> Path:
        return self.workdir / "cosign.key"

    @property
    def public_key(self) -> Path:
        return self.workdir / "cosign.pub"

    @property
    def summary(self) -> Path:
        return self.workdir / "summary.json"

    @property
    def run_state(self) -> Path:
        return self.workdir / "run.json"

    @property
    def redis_pid(self) -> Path:
        return self.workdir / "redis.pid"


def find_spec(explicit: Path | None, cwd: Path) -> Path:
    """``--spec``; else ``giropops.yaml`` in ``cwd`` or a parent (a giropops checkout: beside ``pyproject.toml``)."""
    if explicit is not None:
        if not explicit.is_file():
            raise DemoError(f"spec {explicit} not found")
        return explicit.resolve()
    for d in (cwd, *cwd.parents):
        if (d / SPEC_NAME).is_file() and (d / "pyproject.toml").is_file():
            return (d / SPEC_NAME).resolve()
    raise DemoError(f"no {SPEC_NAME} in {cwd} or its parents: run in the giropops repository or pass --spec FILE")


def conventional_spec_for(spec: Path) -> Path | None:
    path = spec.parent / CONVENTIONAL_SPEC
    return path if path.is_file() else None


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class DemoBuild:
    spec: Path
    tag: str
    digest: str
    archive: Path
    archive_size: int  # bytes on disk
    compressed_size: int  # config + layers, as a registry stores them
    layers: int
    os_packages: int  # what the builder installed
    reused_layers: tuple[str, ...]
    layout: Path | None


def build(spec_path: Path, tag: str, archive: Path, layout: Path | None, cache: Cache | None = None,
          progress: Progress = NO_PROGRESS, context: Path | None = None) -> DemoBuild:
    """Build ``spec_path`` and write it to ``archive`` (and to a fresh OCI layout ``layout``, named ``tag``).

    ``context``: the directory the spec's files must lie in (default: the spec's directory).
    """
    result = Builder(cache, progress).build(load_spec(spec_path, context))
    image = result.image
    write_output(image, ArchiveSpec(archive), [tag], progress)
    if layout is not None:
        # A fresh layout every run: signatures of an earlier run must not pile up beside the new image.
        tmp = Path(tempfile.mkdtemp(dir=layout.parent, prefix=f".{layout.name}."))
        try:
            write_output(image, OCIDirSpec(tmp / "layout"), [tag], progress)
            if layout.exists():
                shutil.rmtree(layout)
            os.replace(tmp / "layout", layout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return DemoBuild(spec_path, tag, image.digest, archive, archive.stat().st_size, image.compressed_size,
                      len(image.layers), len(result.packages), tuple(result.reused_layers), layout)


# --------------------------------------------------------------------------- SBOM


@dataclass(frozen=True)
class SBOMFiles:
    sbom: SBOM
    spdx: Path
    cyclonedx: Path

    @property
    def packages(self) -> int:
        return len(self.sbom.packages)

    def count(self, type_: str) -> int:
        return count_packages(self.sbom, type_)

    def tools(self) -> tuple[str, ...]:
        return tools_in(self.sbom)


def count_packages(sbom: SBOM, type_: str) -> int:
    return sum(1 for p in sbom.packages if p.type == type_)


def tools_in(sbom: SBOM) -> tuple[str, ...]:
    """Which of ``TOOLS`` (shells, package managers) the image has."""
    names = {p.name for p in sbom.packages}
    return tuple(t for t in TOOLS if t in names)


def write_sboms(archive: Path, spdx: Path, cyclonedx: Path, progress: Progress = NO_PROGRESS) -> SBOMFiles:
    sbom = sbom_for(ArchiveSpec(archive), progress=progress)
    atomic_write(spdx, encode(sbom, "spdx-json"))
    atomic_write(cyclonedx, encode(sbom, "cyclonedx-json"))
    return SBOMFiles(sbom, spdx, cyclonedx)


# --------------------------------------------------------------------------- vulnerability database


@dataclass(frozen=True)
class DbState:
    path: Path
    present: bool
    advisories: int = 0
    newest: str | None = None  # newest advisory's "modified"
    age: timedelta | None = None

    @property
    def stale(self) -> bool:
        return self.present and (self.age is None or self.age > DB_STALE_AFTER)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def db_state(path: Path, now: datetime | None = None) -> DbState:
    """What the scan can rely on: no database at all (never updated), or one whose newest advisory has an age."""
    if not path.is_file():
        return DbState(path, False)
    with VulnDB(path) as db:
        st = db.status()
    newest = _parse_time(st.newest_modified)
    age = None if newest is None else (now or datetime.now(UTC)) - newest
    return DbState(path, True, st.advisories, st.newest_modified, age)


@dataclass(frozen=True)
class ScanSummary:
    view: ReportView
    report: Path | None
    stale: str | None = None  # the database's one-line staleness warning, as every scan gives it

    @property
    def counts(self) -> dict[str, int]:
        return self.view.counts()

    @property
    def total(self) -> int:
        return len(self.view.findings)


def prepare_db(db_path: Path, sboms: Sequence[SBOM], options: ensure.EnsureOptions,
               progress: Progress = NO_PROGRESS) -> ensure.EnsureResult:
    """Fetch what scanning ``sboms`` needs when the database lacks it, refresh what is old (``ensure``).

    Raises ``DatabaseNotReadyError`` (``ensure.FetchFailedError``) when a needed fetch fails."""
    return ensure.ensure_ready(db_path, needed_ecosystems(sboms), options, progress=progress)


def scan_sbom(sbom: SBOM, db_path: Path, report: Path | None = None) -> ScanSummary:
    """Match ``sbom`` against the database; ``report`` gets the JSON report (docs/cves-json.md).

    Raises ``DatabaseNotReadyError`` when the database is missing, empty or lacks the SBOM's ecosystems."""
    with VulnDB(db_path) as db:
        result = scan(sbom, db)
        stale = db.stale_warning()
    view = view_for(result)  # disputed findings and "not affected" statements are not counted
    if report is not None:
        atomic_write(report, render(view, Format.JSON).encode())
    return ScanSummary(view, report, stale)


# --------------------------------------------------------------------------- keys and signatures


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    generated: bool


def ensure_key_pair(paths: DemoPaths, password: bytes) -> KeyPair:
    """The work directory's ``cosign.key`` / ``cosign.pub``, generated when neither exists."""
    have_key, have_pub = paths.private_key.exists(), paths.public_key.exists()
    if have_key and have_pub:
        return KeyPair(paths.private_key, paths.public_key, False)
    if have_key or have_pub:
        present = paths.private_key if have_key else paths.public_key
        raise DemoError(f"{present} exists without its other half; remove it or restore the pair")
    written, _ = write_key_pair(paths.key_prefix, password)
    return KeyPair(written.private, written.public, True)


@dataclass(frozen=True)
class Signed:
    layout: Path
    name: str
    digest: str
    signatures: int  # attached to the digest after signing
    verified: int  # signatures that verified with the public key

    @property
    def target(self) -> str:
        return f"oci-dir://{self.layout}:{self.name}"


def sign_and_verify(layout: Path, name: str, keys: KeyPair, password: bytes,
                    annotations: Mapping[str, str] | None = None) -> Signed:
    """Sign the layout's image offline (cosign's ``.sig`` layout), then verify it with the public key."""
    key = SigningKey.load(keys.private, password)
    store = LayoutStore(layout, name)
    subject = store.subject()
    result = sign_image(store, key, dict(annotations or {}), subject)
    check = verify_image(LayoutStore(layout, name), Trust(key=VerifyingKey.load(keys.public)),
                         dict(annotations or {}))
    return Signed(layout, name, str(subject.digest), result.total, len(check.signatures))


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Side:
    """One image's column of the summary."""

    name: str
    digest: str
    archive_size: int
    compressed_size: int
    packages: int
    deb_packages: int
    python_packages: int
    tools: tuple[str, ...]
    vulnerabilities: dict[str, int] | None  # by severity; None when not scanned

    @property
    def total_vulnerabilities(self) -> int | None:
        return None if self.vulnerabilities is None else sum(self.vulnerabilities.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "digest": self.digest, "archive_size": self.archive_size,
            "compressed_size": self.compressed_size, "packages": self.packages,
            "deb_packages": self.deb_packages, "python_packages": self.python_packages,
            "tools": list(self.tools), "vulnerabilities": self.vulnerabilities,
            "vulnerabilities_total": self.total_vulnerabilities,
        }


def side_of(name: str, built: DemoBuild, sbom: SBOM, scanned: ScanSummary | None) -> Side:
    return Side(name, built.digest, built.archive_size, built.compressed_size, len(sbom.packages),
                count_packages(sbom, "deb"), count_packages(sbom, "python"), tools_in(sbom),
                {s: scanned.counts[s] for s in SEVERITIES} if scanned is not None else None)


def write_summary(paths: DemoPaths, data: Mapping[str, Any]) -> None:
    atomic_write(paths.summary, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
