"""Run the real ``giropops`` entry point in a child interpreter and learn which modules it imported."""

from __future__ import annotations

# ``python -c MODULES_WRAPPER OUT ARGS...``: runs the entry point with ARGS, then writes its exit code and the
# names of the imported modules (JSON) to OUT, and exits with that code.
MODULES_WRAPPER = """
import json, sys
out = sys.argv.pop(1)
sys.argv[0] = "giropops"
from giropops.cli.main import entry
try:
    entry()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
sys.exit(code)
"""
