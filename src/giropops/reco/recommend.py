"""``recommendations``: the current base image, whether its tag moved (refresh), and better bases (update).

Candidates for an update are the other tags of the base image's repository (the registry's
tag list, then each candidate's manifest and config) and the catalog's minimal alternatives
for the same runtime.  Every candidate is cataloged and scanned with the same database as
the base image (``Profiler``: once per digest).

Which tags are considered: tags whose leading version is the base's runtime version or newer
within the same major version (``3.11-slim``, ``3.12``, ``3.12.7-slim-bookworm`` for Python
3.11.4), plus tags without a version (``latest``, ``slim``); after profiling, a candidate
whose runtime differs, is older, or is of another major version is dropped.  At most
``MAX_TAG_CANDIDATES`` tags are profiled, newest versions first.

Catalog entries: those of the base's runtime, at most ``MAX_CATALOG_CANDIDATES`` (in file order).

Ranking (best first): fewest critical, then high, medium, low, negligible and unspecified
vulnerabilities; then the smaller image; then the newer runtime; then the name.  A candidate
is listed only when it improves on the base somewhere: fewer vulnerabilities, a smaller
image, or a newer runtime.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from giropops import units
from giropops.errors import ImageError, ManifestError, NotFoundError, SBOMError
from giropops.oci.image import Image, ImageIndex
from giropops.oci.model import Digest, Platform
from giropops.oci.reference import Reference
from giropops.oci.transport import (
    RegistrySpec,
    Spec,
    TransportOptions,
    open_any,
    open_image,
    parse_spec,
    registry_options,
)
from giropops.reco.base import BaseImage, detect_base
from giropops.reco.catalog import Catalog, CatalogEntry
from giropops.reco.profile import Profile, Profiler, Runtime, version_tuple
from giropops.reco.reach import Unreachable
from giropops.vuln.model import SEVERITIES

if TYPE_CHECKING:
    pass

MAX_TAG_CANDIDATES = 12
MAX_CATALOG_CANDIDATES = 12  # per runtime: each one is pulled and scanned
_COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
_VERSION_PREFIX = re.compile(r"^v?\d+(?:\.\d+)*")
DEFAULT_OPTIONS = TransportOptions()


@dataclass(frozen=True)
class Comparison:
    """A candidate against the current base: counts, deltas (candidate minus current) and reasons."""

    counts: dict[str, int]
    deltas: dict[str, int]
    removed: int  # vulnerabilities of the base the candidate does not have
    introduced: int  # vulnerabilities the candidate has and the base does not
    size_delta: int  # bytes, candidate minus current
    packages_delta: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    profile: Profile
    kind: str  # "refresh" | "tag" | "catalog"
    tag: str | None
    flavour: str | None
    description: str
    comparison: Comparison
    also_tagged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refresh:
    status: str  # "available" | "up-to-date" | "unknown"
    detail: str
    candidate: Candidate | None = None


@dataclass(frozen=True)
class Recommendations:
    image: str
    digest: str
    base: BaseImage
    current: Profile | None
    refresh: Refresh | None  # None: not asked (--only-update)
    updates: tuple[Candidate, ...] | None  # None: not asked (--only-refresh)
    notes: tuple[str, ...] = field(default=())


# -- words ---------------------------------------------------------------------------------------


def human_size(n: int) -> str:
    """Decimal units, as registries and Docker Scout print them."""
    return units.human_size(abs(n)).replace(".0 ", " ")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _vulns(n: int) -> str:
    return f"{n} {'vulnerability' if n == 1 else 'vulnerabilities'}"


def _runtime_reason(cur: Runtime | None, new: Runtime | None) -> str | None:
    if cur is None or new is None:
        return None
    if cur.name != new.name:
        return f"different runtime: {new} (was {cur})"
    a, b = cur.parts, new.parts
    n = max(len(a), len(b))
    a += (0,) * (n - len(a))
    b += (0,) * (n - len(b))
    if a == b:
        return "same runtime version"
    if b < a:
        return f"older runtime version ({new.version}, was {cur.version})"
    if b[0] != a[0]:
        return f"major runtime version update ({cur.version} → {new.version})"
    if len(b) > 1 and b[1] != a[1]:
        return f"minor runtime version update ({cur.version} → {new.version})"
    return f"patch runtime version update ({cur.version} → {new.version})"


def _os_reason(cur: Profile, new: Profile) -> str | None:
    if cur.os_id is None and new.os_id is None:
        return None
    if (cur.os_id, cur.os_version) == (new.os_id, new.os_version):
        return "same OS"
    return f"different OS: {new.os or 'none'} (was {cur.os or 'none'})"


def _flavour_reason(flavour: str | None) -> str | None:
    if not flavour:
        return None
    f = flavour.lower()
    if "distroless" in f:
        return "distroless: no shell or package manager"
    if "wolfi" in f or "chainguard" in f:
        return "Wolfi-based minimal image"
    if "slim" in f or "alpine" in f or "minimal" in f:
        return f"slimmer flavour ({flavour})"
    return f"{flavour} flavour"


def compare(current: Profile, cand: Profile, flavour: str | None = None) -> Comparison:
    counts, base = cand.counts(), current.counts()
    deltas = {s: counts[s] - base[s] for s in SEVERITIES}
    cur_keys, new_keys = current.keys(), cand.keys()
    removed = len(cur_keys - new_keys)
    introduced = len(new_keys - cur_keys)
    size_delta = cand.size - current.size
    reasons: list[str] = []
    if removed and not introduced:
        reasons.append(f"removes {_vulns(removed)} and introduces none")
    elif removed or introduced:
        reasons.append(f"removes {_vulns(removed)} and introduces {_vulns(introduced)}")
    else:
        reasons.append("same vulnerabilities")
    crit_high = deltas["critical"] + deltas["high"]
    if crit_high < 0:
        reasons.append(f"{-crit_high} fewer critical or high vulnerabilities")
    elif crit_high > 0:
        reasons.append(f"{crit_high} more critical or high vulnerabilities")
    if size_delta < 0:
        reasons.append(f"image is smaller by {human_size(-size_delta)}")
    elif size_delta > 0:
        reasons.append(f"image is larger by {human_size(size_delta)}")
    else:
        reasons.append("same size")
    for r in (_os_reason(current, cand), _runtime_reason(current.runtime, cand.runtime), _flavour_reason(flavour)):
        if r:
            reasons.append(r)
    pkg_delta = cand.packages - current.packages
    if pkg_delta < 0:
        reasons.append(f"{_plural(-pkg_delta, 'package')} fewer")
    if cand.created and current.created and cand.created > current.created:
        reasons.append(f"newer image (created {cand.created[:10]})")
    return Comparison(counts, deltas, removed, introduced, size_delta, pkg_delta, tuple(reasons))


def rank_key(c: Candidate) -> tuple[object, ...]:
    counts = c.comparison.counts
    rt = c.profile.runtime.parts if c.profile.runtime else ()
    return (*(counts[s] for s in SEVERITIES), c.profile.size, tuple(-p for p in rt), c.profile.name)


def _newer_runtime(cur: Runtime | None, new: Runtime | None) -> bool:
    if cur is None or new is None or cur.name != new.name:
        return False
    a, b = cur.parts, new.parts
    n = max(len(a), len(b))
    return b + (0,) * (n - len(b)) > a + (0,) * (n - len(a))


def improves(current: Profile, c: Candidate) -> bool:
    """Worth listing: fewer vulnerabilities (or fewer critical/high), a smaller image, or a newer runtime."""
    cmp = c.comparison
    fewer = cmp.removed > cmp.introduced or (cmp.deltas["critical"] + cmp.deltas["high"]) < 0
    return fewer or cmp.size_delta < 0 or _newer_runtime(current.runtime, c.profile.runtime)


# -- candidates ----------------------------------------------------------------------------------


def _same_line(cur: Runtime | None, version: tuple[int, ...]) -> bool:
    """A tag version worth a look: same major as the runtime and not older (on the parts the tag gives)."""
    if cur is None or not version or not cur.parts:
        return True
    mine = cur.parts[: len(version)]
    return version[0] == cur.parts[0] and version >= mine


def _acceptable_runtime(cur: Runtime | None, new: Runtime | None) -> bool:
    if cur is None:
        return True
    if new is None or new.name != cur.name:
        return False
    a, b = cur.parts, new.parts
    if not a or not b:
        return True
    n = min(len(a), len(b))
    return b[0] == a[0] and b[:n] >= a[:n]


def _open(ref: Reference, options: TransportOptions, platform: Platform) -> Image:
    return open_image(RegistrySpec(ref), platform, options)


def _tag_candidates(tags: Sequence[str], current_tag: str | None, runtime: Runtime | None) -> list[str]:
    out = []
    for t in tags:
        if t == current_tag or t.startswith(("sha256-", "sha512-")) or t.endswith(_COSIGN_SUFFIXES):
            continue
        if _same_line(runtime, version_tuple(t)):
            out.append(t)
    # newest versions first; tags without a version (latest, slim) after them
    out.sort(key=lambda t: (0 if version_tuple(t) else 1, tuple(-p for p in version_tuple(t)), len(t), t))
    return out[:MAX_TAG_CANDIDATES]


class _Context:
    def __init__(self, options: TransportOptions, platform: Platform, profiler: Profiler) -> None:
        self.options = options
        self.platform = platform
        self.profiler = profiler
        self.notes: list[str] = []
        self.unreachable = Unreachable()


@dataclass(frozen=True)
class TagState:
    """Where the base image's tag points now, compared with what the image was built on."""

    status: str  # "available" | "up-to-date" | "unknown"
    detail: str
    image: Image | None = None  # the tag's image now, when it moved
    reference: Reference | None = None


def tag_state(base: BaseImage, options: TransportOptions, platform: Platform,
              current_digest: str | None = None) -> TagState:
    """Whether the base image's tag still points to the image the base was (the refresh question)."""
    ref = base.reference
    if ref is None or not ref.tag:
        return TagState("unknown", "the base image is not named by a tag, so there is no tag to follow")
    if base.digest is None:
        return TagState("unknown", f"the base image is named {ref} without a digest: "
                                   "cannot tell which version the image was built on")
    try:
        now = open_any(RegistrySpec(ref), options)
    except NotFoundError:
        return TagState("unknown", f"the tag {ref} no longer exists")
    digests = {now.digest}
    image: Image
    if isinstance(now, ImageIndex):
        try:
            image = now.image_for(platform)
        except ManifestError:
            return TagState("unknown", f"the tag {ref} now names an index without an image for {platform}")
        digests.add(image.digest)
    else:
        image = now
    if base.digest in digests or (current_digest is not None and Digest.parse(current_digest) in digests):
        return TagState("up-to-date", "This image version is up to date.", None, ref)
    return TagState(
        "available",
        f"The tag {ref.tag} now points to {image.digest} (the image was built on {base.digest}): "
        "rebuild the image to pick it up.",
        image, ref,
    )


def _refresh(ctx: _Context, base: BaseImage, current: Profile) -> Refresh:
    state = tag_state(base, ctx.options, ctx.platform, current.digest)
    if state.image is None or state.reference is None:
        return Refresh(state.status, state.detail)
    prof = ctx.profiler.profile(str(state.reference), state.image)
    cand = Candidate(prof, "refresh", state.reference.tag, None, f"{state.reference.tag} now points to a newer image",
                     compare(current, prof))
    return Refresh(state.status, state.detail, cand)


def _updates(
    ctx: _Context, base: BaseImage, current: Profile, catalog: Catalog, only_tag: str | None
) -> list[Candidate]:
    ref = base.reference
    runtime = current.runtime
    found: dict[str, Candidate] = {}

    def consider(cand_ref: Reference, kind: str, flavour: str | None, description: str) -> None:
        cand_spec = RegistrySpec(cand_ref)
        skip = ctx.unreachable.skipped(cand_spec, str(cand_ref))
        if skip is not None:
            ctx.notes.append(skip)
            return
        try:
            image = _open(cand_ref, ctx.options, ctx.platform)
            if str(image.digest) == current.digest:
                return
            prof = ctx.profiler.profile(str(cand_ref), image)
        except (ImageError, SBOMError) as exc:
            # one unreadable candidate (gone, another platform only, a broken layer) is a note, not a failure
            ctx.unreachable.record(cand_spec, exc)
            ctx.notes.append(f"candidate {cand_ref} not read: {exc}")
            return
        if kind == "tag" and not _acceptable_runtime(runtime, prof.runtime):
            return
        if prof.digest in found:
            prev = found[prof.digest]
            if kind == "tag" and prev.kind == "tag" and prev.tag and cand_ref.tag and \
                    _tag_preference(cand_ref.tag) < _tag_preference(prev.tag):
                renamed = prof.renamed(str(cand_ref))
                found[prof.digest] = Candidate(renamed, kind, cand_ref.tag, flavour, description,
                                               compare(current, renamed, flavour), (*prev.also_tagged, prev.tag))
            else:
                found[prof.digest] = Candidate(prev.profile, prev.kind, prev.tag, prev.flavour, prev.description,
                                               prev.comparison, (*prev.also_tagged, cand_ref.tag or str(cand_ref)))
            return
        found[prof.digest] = Candidate(prof, kind, cand_ref.tag, flavour, description,
                                       compare(current, prof, flavour))

    current_flavour = _tag_flavour(ref.tag) if ref is not None and ref.tag else None

    def flavour_of(tag: str) -> str | None:
        """A tag's flavour, when it is not the current base's (``slim`` is no news for a ``-slim`` base)."""
        f = _tag_flavour(tag)
        return f if f != current_flavour else None

    if ref is not None and ref.domain and base.how != "none":
        if only_tag is not None:
            consider(ref.with_tag(only_tag), "tag", flavour_of(only_tag), f"tag {only_tag} of {ref.repository}")
        else:
            from giropops.oci.registry import RegistryClient

            try:
                tags = RegistryClient(ref.registry_host, registry_options(ctx.options)).list_tags(ref.path)
            except ImageError as exc:
                tags = []
                ctx.notes.append(f"tags of {ref.repository} not listed: {exc}")
            for t in _tag_candidates(tags, ref.tag, runtime):
                consider(ref.with_tag(t), "tag", flavour_of(t), f"tag {t} of {ref.repository}")
    if only_tag is None and runtime is not None:
        entries = catalog.for_runtime(runtime.name)
        if len(entries) > MAX_CATALOG_CANDIDATES:
            ctx.notes.append(f"only the first {MAX_CATALOG_CANDIDATES} of {len(entries)} catalog entries for "
                             f"{runtime.name} were considered")
        for entry in entries[:MAX_CATALOG_CANDIDATES]:
            consider(Reference.parse(entry.image), "catalog", entry.flavour, entry.description or entry.image)
    kept = [c for c in found.values() if improves(current, c)]
    dropped = len(found) - len(kept)
    if dropped:
        ctx.notes.append(f"{_plural(dropped, 'candidate')} not better than the current base image (not listed)")
    kept.sort(key=rank_key)
    return kept


def _tag_flavour(tag: str) -> str | None:
    """``3.12-slim-bookworm`` -> ``slim-bookworm``; ``3.12`` and ``latest`` -> None."""
    m = _VERSION_PREFIX.match(tag)
    if m is None:
        return None
    return tag[m.end():].lstrip("-_.") or None


def _tag_preference(tag: str) -> tuple[int, int, int, str]:
    """Which of several tags of one digest names it: a versioned tag, the least specific version
    (``3.12-slim`` follows patch releases, ``3.12.7-slim`` does not), then the shortest."""
    v = version_tuple(tag)
    return (0 if v else 1, len(v), len(tag), tag)


def open_base(base: BaseImage, options: TransportOptions, platform: Platform) -> Image:
    """The base image itself: by digest when known (the tag may have moved since), else by name."""
    ref = base.reference
    if ref is not None:
        target = ref.with_digest(base.digest) if base.digest is not None else ref
        return _open(Reference(target.domain, target.path, None if target.digest else target.tag, target.digest),
                     options, platform)
    if base.name is None:
        raise ImageError("the base image has no name")
    return open_image(parse_spec(base.name), platform, options)


def recommend(
    spec: Spec | str,
    profiler: Profiler,
    catalog: Catalog,
    *,
    options: TransportOptions = DEFAULT_OPTIONS,
    platform: Platform | None = None,
    candidates: Sequence[str] = (),
    only_refresh: bool = False,
    only_update: bool = False,
    tag: str | None = None,
) -> Recommendations:
    s = parse_spec(spec) if isinstance(spec, str) else spec
    image = open_image(s, platform, options)
    plat = image.config.platform
    ctx = _Context(options, plat, profiler)
    base = detect_base(image, s, options, candidates, plat, ctx.unreachable)
    if not base.found:
        return Recommendations(str(s), str(image.digest), base, None, None, None, base.notes)
    ctx.notes.extend(base.notes)
    try:
        base_image = open_base(base, options, plat)
    except ImageError as exc:
        ctx.notes.append(f"the base image {base.name or base.digest} could not be read: {exc}")
        return Recommendations(str(s), str(image.digest), base, None, None, None, tuple(ctx.notes))
    current = profiler.profile(base.name or str(base_image.digest), base_image)
    refresh = None if only_update else _refresh(ctx, base, current)
    updates = None if only_refresh else tuple(_updates(ctx, base, current, catalog, tag))
    return Recommendations(str(s), str(image.digest), base, current, refresh, updates, tuple(ctx.notes))


__all__ = [
    "Candidate",
    "CatalogEntry",
    "Comparison",
    "Recommendations",
    "Refresh",
    "compare",
    "human_size",
    "open_base",
    "rank_key",
    "recommend",
]
