"""Cut the full OSV snapshots down to the advisories the tests need (a maintenance tool).

Usage: ``python tests/data/vulndata/cut.py FULL_VULNDATA_DIR``

Never imported by the tests.  For each file in ``FILES`` it keeps, unchanged and in the
original order, every record with an affected entry naming a package the tests scan
(``WANTED`` per ecosystem; Debian source packages come from ``debian-sources.txt``) and
every ``SAMPLE_EVERY``-th of the other records, so non-matches are still exercised.
All records of a kept package stay, not only those matching today's versions: the test
images are built from a live Debian mirror.  Output: the same file names beside this
script, gzip with a zero mtime (reproducible bytes).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY = 50

FILES = [
    "debian12.osv.jsonl.gz", "debian12-dsa-dla.osv.jsonl.gz",
    "pypi.osv.jsonl.gz", "pypi-malicious.osv.jsonl.gz",
]
# Not cut: the Wolfi and Chainguard feeds (CC BY-NC-ND 4.0 plus Chainguard's own terms: no derivatives,
# no redistribution) and Alpine's secdb conversion (no licence stated): tests/vuln/apkdata.py writes
# synthetic apk advisories of the same shapes instead.

# PyPI: the app image's requirements and their dependencies, and every pin in tests/vuln and tests/reco.
PYPI = """
flask werkzeug jinja2 markupsafe itsdangerous click blinker gunicorn packaging redis hiredis async-timeout
prometheus-client requests urllib3 certifi idna charset-normalizer django pyyaml pillow cryptography
zope-interface aiohttp lxml numpy tornado setuptools pip wheel ascii2text
""".split()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wanted_names() -> dict[str, set[str]]:
    debian = {ln.strip() for ln in (HERE / "debian-sources.txt").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")}
    return {"Debian": debian, "PyPI": {canonical(n) for n in PYPI}}


def wanted(record: dict[str, object], names: dict[str, set[str]]) -> bool:
    for aff in record.get("affected") or []:  # type: ignore[attr-defined]
        pkg = aff.get("package") or {}
        family = str(pkg.get("ecosystem", "")).split(":", 1)[0]
        name = str(pkg.get("name", ""))
        if family == "PyPI":
            name = canonical(name)
        if name in names.get(family, set()):
            return True
    return False


def cut(src: Path, dest: Path, names: dict[str, set[str]]) -> tuple[int, int]:
    kept: list[str] = []
    total = others = 0
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            total += 1
            if wanted(json.loads(line), names):
                kept.append(line.rstrip("\n"))
            else:
                if others % SAMPLE_EVERY == 0:
                    kept.append(line.rstrip("\n"))
                others += 1
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(("\n".join(kept) + "\n").encode())
    return total, len(kept)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: cut.py FULL_VULNDATA_DIR", file=sys.stderr)
        return 2
    names = wanted_names()
    for name in FILES:
        total, kept = cut(Path(argv[0]) / name, HERE / name, names)
        print(f"{name}: kept {kept} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
