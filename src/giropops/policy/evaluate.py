"""Run the policies against one image.

Each policy answers ``pass``, ``fail`` or ``nodata`` with a reason in words; "no data"
means the question could not be answered (no key to check a signature with, no base image
found, no licence information), never that it passed.  A vulnerability database that is
missing, empty or lacks the image's ecosystems is an error (``DatabaseNotReadyError``), not
"no data": a policy run on it would look like a pass.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giropops.errors import (
    ConfigError,
    DatabaseNotReadyError,
    GiropopsError,
    VerificationError,
    VulnError,
    quote_for_error,
)
from giropops.oci.image import Image
from giropops.oci.model import Platform
from giropops.oci.transport import Spec, TransportOptions, open_image, parse_spec
from giropops.policy.config import PolicyConfig
from giropops.reco import deps
from giropops.reco.base import detect_base
from giropops.reco.recommend import tag_state
from giropops.sbom.model import SBOM
from giropops.vuln.model import FindingBrief

PASS, FAIL, NODATA = "pass", "fail", "nodata"
TITLES = {
    "fixable-vulnerabilities": "No fixable critical or high vulnerabilities",
    "non-root": "Runs as a non-root user",
    "base-up-to-date": "Base image is up to date",
    "signed": "Signed with the given key",
    "sbom-attestation": "SBOM attestation attached",
    "no-copyleft": "No copyleft licences",
    "no-known-exploited": "No known exploited vulnerabilities (CISA KEV)",
}
_LICENSE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]*")
_OPERATORS = {"AND", "OR", "WITH", "and", "or", "with"}


@dataclass(frozen=True)
class PolicyResult:
    name: str
    title: str
    status: str  # pass | fail | nodata
    reason: str
    details: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class PolicyReport:
    image: str
    digest: str
    results: tuple[PolicyResult, ...]
    no_data_fails: bool = False

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL or (self.no_data_fails and r.status == NODATA) for r in self.results)


class _Facts:
    """What several policies share, computed at most once: the SBOM and the vulnerabilities."""

    def __init__(self, image: Image, name: str, db_path: Path | None, severity_source: str = "vendor",
                 prepare_db: Callable[[SBOM], None] | None = None) -> None:
        self.image = image
        self.prepare_db = prepare_db  # gets the data the SBOM needs into the database (vuln.db.ensure)
        self.severity_source = severity_source
        self.name = name
        self.db_path = db_path
        self._sbom: SBOM | None = None
        self._vulns: tuple[FindingBrief, ...] | None = None

    def sbom(self) -> SBOM:
        if self._sbom is None:
            self._sbom = deps.sbom_of(self.image, self.name)
        return self._sbom

    def vulnerabilities(self) -> tuple[FindingBrief, ...]:
        if self._vulns is None:
            if self.prepare_db is not None:
                self.prepare_db(self.sbom())
            db = deps.open_db(self.db_path)
            try:
                self._vulns = deps.scan(self.sbom(), db, self.severity_source)
            finally:
                db.close()
        return self._vulns

    def kev_catalog(self) -> str | None:
        """The version of the KEV catalog the database holds; None when it holds none."""
        db = deps.open_db(self.db_path)
        try:
            return db.exploit_meta().get("kev_version") or None
        finally:
            db.close()


def normalize_license(text: str) -> str:
    """``GPL-2+``, ``GPL-2.0-or-later``, ``gpl-2.0-only`` -> ``GPL-2.0`` (for comparison only)."""
    t = text.strip().upper().removesuffix("+")
    for suffix in ("-ONLY", "-OR-LATER"):
        t = t.removesuffix(suffix)
    t = re.sub(r"-(\d+)$", r"-\1.0", t)
    return t


def licence_ids(expression: str) -> list[str]:
    return [tok for tok in _LICENSE_TOKEN.findall(expression) if tok not in _OPERATORS]


def _is_listed(licence: str, listed: Sequence[str]) -> str | None:
    n = normalize_license(licence)
    for item in listed:
        pattern = normalize_license(item)
        if n == pattern or fnmatch.fnmatchcase(n, pattern):
            return item
    return None


# -- the policies --------------------------------------------------------------------------------


def _fixable(facts: _Facts, cfg: PolicyConfig) -> PolicyResult:
    name = "fixable-vulnerabilities"
    try:
        vulns = facts.vulnerabilities()
    except DatabaseNotReadyError:
        raise  # "no data" would pass the policy on a database that cannot know: an error, never a result
    except (VulnError, ConfigError) as exc:
        return PolicyResult(name, TITLES[name], NODATA, f"no vulnerability data: {exc}")
    bad = [v for v in vulns if v.severity in cfg.severities and v.fixed_version is not None]
    which = "/".join(cfg.severities)
    details = tuple(
        f"{v.id} ({v.severity}) in {v.package_type}/{v.package} {v.version}: fixed in {v.fixed_version}"
        for v in sorted(bad, key=lambda v: (v.severity, v.package, v.id))
    )
    if len(bad) > cfg.max_fixable:
        limit = f" (at most {cfg.max_fixable} allowed)" if cfg.max_fixable else ""
        return PolicyResult(name, TITLES[name], FAIL,
                            f"{len(bad)} {which} vulnerabilit{'y' if len(bad) == 1 else 'ies'} "
                            f"with a fix available{limit}", details)
    return PolicyResult(name, TITLES[name], PASS,
                        f"{len(bad)} {which} vulnerabilities with a fix available "
                        f"(of {len(vulns)} vulnerabilities in total)", details)


def _known_exploited(facts: _Facts, cfg: PolicyConfig) -> PolicyResult:
    name = "no-known-exploited"
    try:
        vulns = facts.vulnerabilities()
        catalog = facts.kev_catalog()
    except (VulnError, ConfigError) as exc:
        return PolicyResult(name, TITLES[name], NODATA, f"no vulnerability data: {exc}")
    if catalog is None:
        return PolicyResult(name, TITLES[name], NODATA, "the database holds no CISA KEV catalog: run "
                            "'giropops db update' or 'giropops db import known_exploited_vulnerabilities.json'")
    bad = sorted((v for v in vulns if v.kev), key=lambda v: (v.package, v.id))
    details = tuple(f"{v.id} ({v.severity}) in {v.package_type}/{v.package} {v.version}: "
                    f"{'fixed in ' + v.fixed_version if v.fixed_version else 'not fixed'}" for v in bad)
    if bad:
        return PolicyResult(name, TITLES[name], FAIL, f"{len(bad)} known exploited "
                            f"vulnerabilit{'y' if len(bad) == 1 else 'ies'} (KEV catalog {catalog})", details)
    return PolicyResult(name, TITLES[name], PASS, f"none of {len(vulns)} vulnerabilities is in the KEV catalog "
                        f"{catalog}")


def is_root(user: str) -> bool:
    u = user.strip()
    name = u.split(":", 1)[0]
    return name in ("", "root", "0")


def _non_root(facts: _Facts, cfg: PolicyConfig) -> PolicyResult:
    name = "non-root"
    user = facts.image.config.user
    if is_root(user):
        why = "no USER is set: the image runs as root" if not user.strip() else f"USER is {quote_for_error(user)}: root"
        return PolicyResult(name, TITLES[name], FAIL, why)
    return PolicyResult(name, TITLES[name], PASS, f"runs as user {quote_for_error(user)}")


def _copyleft(facts: _Facts, cfg: PolicyConfig) -> PolicyResult:
    name = "no-copyleft"
    try:
        sbom = facts.sbom()
    except GiropopsError as exc:
        return PolicyResult(name, TITLES[name], NODATA, f"no SBOM: {exc}")
    with_licence = [p for p in sbom.packages if p.licenses]
    if not with_licence:
        return PolicyResult(name, TITLES[name], NODATA,
                            f"none of the {len(sbom.packages)} packages declares a licence")
    hits: list[str] = []
    for p in sorted(with_licence, key=lambda p: p.sort_key()):
        for expr in p.licenses:
            found = [lic for lic in licence_ids(expr) if _is_listed(lic, cfg.licenses)]
            if found:
                hits.append(f"{p.type}/{p.name} {p.version}: {expr}")
                break
    if hits:
        return PolicyResult(name, TITLES[name], FAIL,
                            f"{len(hits)} package{'s' if len(hits) != 1 else ''} under a listed copyleft licence",
                            tuple(hits))
    return PolicyResult(name, TITLES[name], PASS,
                        f"no listed copyleft licence among {len(with_licence)} packages with licence information")


class Evaluator:
    def __init__(self, spec: Spec, image: Image, options: TransportOptions, cfg: PolicyConfig,
                 key: Path | None, db_path: Path | None, candidates: Sequence[str],
                 severity_source: str = "vendor", prepare_db: Callable[[SBOM], None] | None = None) -> None:
        self.spec = spec
        self.image = image
        self.options = options
        self.cfg = cfg
        self.key = key
        self.candidates = candidates
        self.facts = _Facts(image, str(spec), db_path, severity_source, prepare_db)

    def base_up_to_date(self) -> PolicyResult:
        name = "base-up-to-date"
        plat: Platform = self.image.config.platform
        base = detect_base(self.image, self.spec, self.options, self.candidates, plat)
        if not base.found:
            return PolicyResult(name, TITLES[name], NODATA, base.detail)
        try:
            state = tag_state(base, self.options, plat)
        except GiropopsError as exc:
            return PolicyResult(name, TITLES[name], NODATA, f"the base image tag could not be read: {exc}")
        where = f"base image {base.name or base.digest} (found {base.detail})"
        if state.status == "up-to-date":
            return PolicyResult(name, TITLES[name], PASS, f"{where}: {state.detail}")
        if state.status == "available":
            return PolicyResult(name, TITLES[name], FAIL, f"{where}: refresh pending. {state.detail}")
        return PolicyResult(name, TITLES[name], NODATA, f"{where}: {state.detail}")

    def signed(self) -> PolicyResult:
        name = "signed"
        if self.key is None:
            return PolicyResult(name, TITLES[name], NODATA, "no key given (--key)")
        if not deps.signatures_supported(self.spec):
            return PolicyResult(name, TITLES[name], NODATA,
                                f"{self.spec}: signatures are kept in registries and OCI layouts only")
        try:
            deps.verify_signature(self.spec, self.options, self.key)
        except VerificationError as exc:
            return PolicyResult(name, TITLES[name], FAIL, str(exc))
        except ConfigError as exc:
            return PolicyResult(name, TITLES[name], NODATA, str(exc))
        return PolicyResult(name, TITLES[name], PASS, f"a signature verifies with {self.key.name}")

    def sbom_attestation(self) -> PolicyResult:
        name = "sbom-attestation"
        if not deps.signatures_supported(self.spec):
            return PolicyResult(name, TITLES[name], NODATA,
                                f"{self.spec}: attestations are kept in registries and OCI layouts only")
        if self.key is not None and self.cfg.verify_sbom:
            try:
                ptype = deps.verify_sbom_attestation(self.spec, self.options, self.key)
            except VerificationError as exc:
                return PolicyResult(name, TITLES[name], FAIL, f"no SBOM attestation verifies: {exc}")
            except ConfigError as exc:
                return PolicyResult(name, TITLES[name], NODATA, str(exc))
            return PolicyResult(name, TITLES[name], PASS,
                                f"an SBOM attestation ({ptype}) verifies with {self.key.name}")
        statements = deps.statements_unverified(self.spec, self.image.digest, self.options)
        if statements is None:
            return PolicyResult(name, TITLES[name], NODATA, "this source holds no attestations")
        found = sorted({s.predicate_type for s in statements if s.predicate_type in deps.SBOM_PREDICATE_TYPES})
        if found:
            return PolicyResult(name, TITLES[name], PASS,
                                f"SBOM attestation attached ({', '.join(found)}); signature not checked (no --key)")
        if deps.has_attached_sbom(self.spec, self.image.digest, self.options):
            return PolicyResult(name, TITLES[name], PASS, "SBOM attached (cosign .sbom tag); not signed")
        return PolicyResult(name, TITLES[name], FAIL, "no SBOM attestation is attached to the image")

    def run(self) -> list[PolicyResult]:
        table: dict[str, Callable[[], PolicyResult]] = {
            "fixable-vulnerabilities": lambda: _fixable(self.facts, self.cfg),
            "non-root": lambda: _non_root(self.facts, self.cfg),
            "base-up-to-date": self.base_up_to_date,
            "signed": self.signed,
            "sbom-attestation": self.sbom_attestation,
            "no-copyleft": lambda: _copyleft(self.facts, self.cfg),
            "no-known-exploited": lambda: _known_exploited(self.facts, self.cfg),
        }
        return [table[n]() for n in table if n in self.cfg.enabled]


def evaluate(
    spec: Spec | str,
    cfg: PolicyConfig,
    *,
    options: TransportOptions | None = None,
    platform: Platform | None = None,
    key: Path | None = None,
    db_path: Path | None = None,
    candidates: Sequence[str] = (),
    severity_source: str = "vendor",
    prepare_db: Callable[[SBOM], None] | None = None,
) -> PolicyReport:
    s = parse_spec(spec) if isinstance(spec, str) else spec
    opts = options if options is not None else TransportOptions()
    image = open_image(s, platform, opts)
    results = Evaluator(s, image, opts, cfg, key, db_path, candidates, severity_source, prepare_db).run()
    return PolicyReport(str(s), str(image.digest), tuple(results), cfg.no_data_fails)


def report_json(report: PolicyReport) -> dict[str, Any]:
    return {
        "image": report.image,
        "digest": report.digest,
        "passed": not report.failed,
        "policies": [
            {"name": r.name, "title": r.title, "status": r.status, "reason": r.reason, "details": list(r.details)}
            for r in report.results
        ],
    }
