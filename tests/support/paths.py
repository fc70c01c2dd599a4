"""Where the tests find the repository and their data: everything lives inside the repository.

``tests/data`` holds the cut-down advisories and cosign vectors (``tests/data/PROVENANCE.md``);
no test reads anything beside the repository.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data"
VULNDATA = DATA / "vulndata"
COSIGN_VECTORS = DATA / "cosign-vectors"
KEV_CATALOG = DATA / "kev" / "known_exploited_vulnerabilities.json"
