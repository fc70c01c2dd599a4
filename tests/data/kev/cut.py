"""Cut CISA's KEV catalog down to the CVEs the test advisories name (maintenance tool, never imported by tests).

Usage: python tests/data/kev/cut.py FULL_CATALOG.json[.gz]
Writes tests/data/kev/known_exploited_vulnerabilities.json: the catalog's own header fields (``count`` set to
the entries kept) and, unchanged and in the catalog's order, every entry whose ``cveID`` is the id or an alias
of a record in tests/data/vulndata.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VULNDATA = HERE.parent / "vulndata"


def advisory_ids() -> set[str]:
    ids: set[str] = set()
    for path in sorted(VULNDATA.glob("*.osv.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                ids.add(record["id"])
                ids.update(record.get("aliases", []))
    return ids


def main(full: Path) -> None:
    opener = gzip.open if full.name.endswith(".gz") else open
    with opener(full, "rt", encoding="utf-8") as fh:
        catalog = json.load(fh)
    wanted = advisory_ids()
    kept = [v for v in catalog["vulnerabilities"] if v["cveID"] in wanted]
    out = {k: v for k, v in catalog.items() if k != "vulnerabilities"}
    out["count"] = len(kept)
    out["vulnerabilities"] = kept
    (HERE / "known_exploited_vulnerabilities.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"kept {len(kept)} of {len(catalog['vulnerabilities'])} entries")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
