"""Write small CycloneDX JSON SBOMs for ``sbom://FILE`` (the form ``giropops cves`` reads before images)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

DEB_BASE = [  # real bookworm binary packages, their sources and versions (some deliberately old)
    ("libssl3", "3.0.11-1~deb12u2", "openssl"),
    ("openssl", "3.0.11-1~deb12u2", "openssl"),
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    ("libc6", "2.36-9+deb12u4", "glibc"),
    ("libexpat1", "2.5.0-1", "expat"),
    ("tar", "1.34+dfsg-1.2", "tar"),
    ("libsqlite3-0", "3.40.1-2", "sqlite3"),
    ("libpython3.11-minimal", "3.11.2-6", "python3.11"),
]


def write(path: Path, name: str, distro: tuple[str, str] | None, debs: Sequence[tuple[str, str, str]],
          pythons: Sequence[tuple[str, str]] = (), apks: Sequence[tuple[str, str, str]] = (),
          digest: str = "sha256:" + "a" * 64, size: int = 50_000_000, diff_ids: Sequence[str] = (),
          env: Sequence[str] = (), labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None) -> str:
    props = [{"name": "giropops:digest", "value": digest}, {"name": "giropops:platform", "value": "linux/amd64"},
             {"name": "giropops:size", "value": str(size)}]
    props += [{"name": "giropops:diff_id", "value": d} for d in diff_ids]
    props += [{"name": "giropops:env", "value": e} for e in env]
    props += [{"name": f"giropops:label:{k}", "value": v} for k, v in (labels or {}).items()]
    props += [{"name": f"giropops:annotation:{k}", "value": v} for k, v in (annotations or {}).items()]
    components: list[dict[str, object]] = []
    if distro:
        components.append({"type": "operating-system", "name": distro[0], "version": distro[1]})
    for n, v, src in debs:
        components.append({"type": "library", "name": n, "version": v,
                           "purl": f"pkg:deb/debian/{n}@{v}?arch=amd64&upstream={src}&distro=debian-12"})
    for n, v in pythons:
        components.append({"type": "library", "name": n, "version": v, "purl": f"pkg:pypi/{n.lower()}@{v}"})
    for n, v, origin in apks:
        components.append({"type": "library", "name": n, "version": v,
                           "purl": f"pkg:apk/alpine/{n}@{v}?arch=x86_64&upstream={origin}"})
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
           "metadata": {"component": {"type": "container", "name": name, "properties": props}},
           "components": components}
    path.write_text(json.dumps(doc))
    return f"sbom://{path}"
