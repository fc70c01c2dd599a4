from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
VULNDATA = SHARED / "vulndata"
COSIGN_VECTORS = SHARED / "cosign-vectors"
