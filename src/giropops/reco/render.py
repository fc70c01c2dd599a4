"""``recommendations`` output: text laid out as Docker Scout does, Markdown, and JSON (all numbers)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from giropops.reco.profile import Profile
from giropops.reco.recommend import Candidate, Comparison, Recommendations, human_size
from giropops.vuln.model import SEVERITIES

_LETTER = {"critical": "C", "high": "H", "medium": "M", "low": "L", "negligible": "N", "unspecified": "?"}


def age_days(created: str | None, now: _dt.datetime) -> int | None:
    if not created:
        return None
    try:
        when = _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return max(0, (now - when).days)


def _age_text(created: str | None, now: _dt.datetime) -> str:
    days = age_days(created, now)
    if days is None:
        return "unknown"
    if days == 0:
        return "today"
    return f"{days} day{'s' if days != 1 else ''} ago"


def _counts(counts: dict[str, int]) -> str:
    return "  ".join(f"{counts[s]:>3}{_LETTER[s]}" for s in SEVERITIES)


def _deltas(deltas: dict[str, int]) -> str:
    return "  ".join(f"{deltas[s]:>+3}" if deltas[s] else "  0" for s in SEVERITIES)


def _signed_size(n: int) -> str:
    return ("-" if n < 0 else "+" if n > 0 else "") + human_size(n)


# -- JSON ----------------------------------------------------------------------------------------


def _profile_json(p: Profile, now: _dt.datetime) -> dict[str, Any]:
    return {
        "name": p.name,
        "digest": p.digest,
        "platform": p.platform,
        "created": p.created,
        "ageDays": age_days(p.created, now),
        "size": p.size,
        "packages": p.packages,
        "os": p.os,
        "runtime": {"name": p.runtime.name, "version": p.runtime.version, "source": p.runtime.source}
        if p.runtime else None,
        "user": p.user,
        "vulnerabilities": {**p.counts(), "total": p.total},
    }


def _comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "vulnerabilities": {**c.counts, "total": sum(c.counts.values())},
        "vulnerabilityDeltas": {**c.deltas, "total": sum(c.deltas.values())},
        "removed": c.removed,
        "introduced": c.introduced,
        "sizeDelta": c.size_delta,
        "packagesDelta": c.packages_delta,
        "reasons": list(c.reasons),
    }


def _candidate_json(c: Candidate, now: _dt.datetime, rank: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rank is not None:
        out["rank"] = rank
    out.update({
        "kind": c.kind,
        "tag": c.tag,
        "alsoTagged": list(c.also_tagged),
        "flavour": c.flavour,
        "description": c.description,
        "image": _profile_json(c.profile, now),
        **_comparison_json(c.comparison),
    })
    return out


def as_json(r: Recommendations, now: _dt.datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        "image": r.image,
        "digest": r.digest,
        "baseImage": {
            "found": r.base.found,
            "how": r.base.how,
            "name": r.base.name,
            "digest": str(r.base.digest) if r.base.digest else None,
            "detail": r.base.detail,
        },
        "current": _profile_json(r.current, now) if r.current else None,
        "refresh": None,
        "updates": None,
        "notes": list(r.notes),
    }
    if r.refresh is not None:
        out["refresh"] = {
            "status": r.refresh.status,
            "detail": r.refresh.detail,
            "candidate": _candidate_json(r.refresh.candidate, now, None) if r.refresh.candidate else None,
        }
    if r.updates is not None:
        out["updates"] = [_candidate_json(c, now, i) for i, c in enumerate(r.updates, start=1)]
    return out


def render_json(r: Recommendations, now: _dt.datetime) -> str:
    return json.dumps(as_json(r, now), indent=2) + "\n"


# -- text ----------------------------------------------------------------------------------------


def _row(out: list[str], label: str, value: str) -> None:
    out.append(f"  {label:<16}│  {value}")


def _profile_rows(out: list[str], p: Profile, now: _dt.datetime, cmp: Comparison | None = None) -> None:
    _row(out, "Digest", p.digest)
    if cmp is None:
        _row(out, "Vulnerabilities", _counts(p.counts()) + f"   ({p.total} total)")
        _row(out, "Size", human_size(p.size))
        _row(out, "Packages", str(p.packages))
    else:
        _row(out, "Vulnerabilities", _counts(cmp.counts) + f"   ({p.total} total)")
        _row(out, "  change", _deltas(cmp.deltas) + f"   (-{cmp.removed} removed, +{cmp.introduced} introduced)")
        _row(out, "Size", f"{human_size(p.size)} ({_signed_size(cmp.size_delta)})")
        _row(out, "Packages", f"{p.packages} ({cmp.packages_delta:+d})")
    _row(out, "OS", p.os or "none detected")
    _row(out, "Runtime", str(p.runtime) if p.runtime else "none detected")
    _row(out, "Created", f"{p.created or 'unknown'} ({_age_text(p.created, now)})")


def render_text(r: Recommendations, now: _dt.datetime) -> str:
    out = [f"  Target          │  {r.image}", f"    digest        │  {r.digest}", ""]
    if not r.base.found:
        out.append("  No base image detected.")
        out.append(f"  {r.base.detail}")
        _notes(out, r.notes)
        return "\n".join(out) + "\n"
    out.append("## Recommended fixes")
    out.append("")
    out.append(f"  Base image is  {r.base.name or r.base.digest}")
    out.append(f"  (found {r.base.detail})")
    out.append("")
    if r.current is None:
        _notes(out, r.notes)
        return "\n".join(out) + "\n"
    _row(out, "Name", r.current.name)
    _profile_rows(out, r.current, now)
    if r.refresh is not None:
        out += ["", "Refresh base image", "  Rebuild the image using a newer base image version.", ""]
        if r.refresh.candidate is None:
            mark = "✓" if r.refresh.status == "up-to-date" else "?"
            out.append(f"  {mark} {r.refresh.detail}")
        else:
            c = r.refresh.candidate
            out.append(f"  {r.refresh.detail}")
            out.append("")
            _candidate_block(out, c, now)
    if r.updates is not None:
        out += ["", "Change base image", "  The list displays new recommended tags in descending order, where the top"
                "\n  results are rated as most suitable.", ""]
        if not r.updates:
            out.append("  No better base image found.")
        for i, c in enumerate(r.updates, start=1):
            _candidate_block(out, c, now, i)
            out.append("")
    _notes(out, r.notes)
    return "\n".join(out).rstrip("\n") + "\n"


def _candidate_block(out: list[str], c: Candidate, now: _dt.datetime, rank: int | None = None) -> None:
    head = f"{rank}. " if rank is not None else ""
    name = c.profile.name + (f" (also {', '.join(c.also_tagged)})" if c.also_tagged else "")
    out.append(f"  {head}{name}")
    if c.description:
        out.append(f"     {c.description}")
    out.append("     Benefits:")
    out.extend(f"     • {reason}" for reason in c.comparison.reasons)
    _profile_rows(out, c.profile, now, c.comparison)


def _notes(out: list[str], notes: tuple[str, ...]) -> None:
    if notes:
        while out and not out[-1]:
            out.pop()
        out += ["", "Notes:"]
        out.extend(f"  - {n}" for n in notes)


# -- Markdown ------------------------------------------------------------------------------------


def _md_counts(counts: dict[str, int]) -> str:
    return " ".join(f"{counts[s]}{_LETTER[s]}" for s in SEVERITIES)


def render_markdown(r: Recommendations, now: _dt.datetime) -> str:
    out = [f"## Recommendations for `{r.image}`", "", f"Digest: `{r.digest}`", ""]
    if not r.base.found:
        out += ["**No base image detected.**", "", r.base.detail]
        _md_notes(out, r.notes)
        return "\n".join(out) + "\n"
    out += [f"Base image: `{r.base.name or r.base.digest}` (found {r.base.detail})", ""]
    if r.current is not None:
        p = r.current
        out += [
            "| | current base |", "|---|---|",
            f"| Digest | `{p.digest}` |",
            f"| Vulnerabilities | {_md_counts(p.counts())} ({p.total}) |",
            f"| Size | {human_size(p.size)} |",
            f"| Packages | {p.packages} |",
            f"| OS | {p.os or 'none detected'} |",
            f"| Runtime | {p.runtime or 'none detected'} |",
            f"| Created | {p.created or 'unknown'} ({_age_text(p.created, now)}) |",
            "",
        ]
    if r.refresh is not None:
        out += ["### Refresh", ""]
        out.append(r.refresh.detail)
        if r.refresh.candidate is not None:
            out.append("")
            _md_table(out, [r.refresh.candidate], now, ranked=False)
        out.append("")
    if r.updates is not None:
        out += ["### Update", ""]
        if r.updates:
            _md_table(out, list(r.updates), now, ranked=True)
        else:
            out.append("No better base image found.")
        out.append("")
    _md_notes(out, r.notes)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_table(out: list[str], cands: list[Candidate], now: _dt.datetime, ranked: bool) -> None:
    out.append(("| # " if ranked else "") + "| Image | Vulnerabilities | Change | Size | Packages | Age | Why |")
    out.append(("|---" if ranked else "") + "|---|---|---|---|---|---|---|")
    for i, c in enumerate(cands, start=1):
        cmp = c.comparison
        change = " ".join(f"{cmp.deltas[s]:+d}{_LETTER[s]}" for s in SEVERITIES if cmp.deltas[s])
        out.append(
            (f"| {i} " if ranked else "")
            + f"| `{c.profile.name}` | {_md_counts(cmp.counts)} | {change or 'none'} "
            f"| {human_size(c.profile.size)} ({_signed_size(cmp.size_delta)}) | {c.profile.packages} "
            f"| {_age_text(c.profile.created, now)} | {'; '.join(cmp.reasons)} |"
        )


def _md_notes(out: list[str], notes: tuple[str, ...]) -> None:
    if notes:
        while out and not out[-1]:
            out.pop()
        out += ["", "Notes:", ""]
        out.extend(f"- {n}" for n in notes)
