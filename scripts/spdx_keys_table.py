"""Write ``src/giropops/data/spdx/spdx-license-keys.json`` from the installed license-expression's index.

    .venv/bin/python scripts/spdx_keys_table.py

The tables are what ``giropops.sbom.licenses._parse_index`` (the index decoded as JSON) makes of the
index; the file names the index by its SHA-256, so ``_spdx_keys`` uses them only for that very index
(any other release of license-expression is scanned as before).  Run it after upgrading
license-expression; tests/sbom/test_license_keys_cache.py says when the file and the installed index
differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.metadata import version

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "src"))

from giropops.sbom import licenses  # noqa: E402 - src/ is on sys.path only now


def main() -> int:
    index = next(p for p in (os.path.join(e or ".", licenses._LICENSE_INDEX) for e in sys.path) if os.path.isfile(p))
    with open(index, "rb") as f:
        data = f.read()
    tables, exceptions = licenses._parse_index(data)
    doc = {
        "index": "license_expression/data/scancode-licensedb-index.json",
        "license_expression": version("license-expression"),
        "index_sha256": hashlib.sha256(data).hexdigest(),
        "licenses": dict(sorted(tables.items())),
        "exceptions": dict(sorted(exceptions.items())),
    }
    out = os.path.join(REPO_ROOT, "src", "giropops", "data", "spdx", "spdx-license-keys.json")
    with open(out, "w", encoding="ascii") as f:
        json.dump(doc, f, indent=0, separators=(",", ":"))
        f.write("\n")
    print(f"{out}: {len(tables)} licenses, {len(exceptions)} exceptions, index sha256 {doc['index_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
