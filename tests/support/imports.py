"""Run the real ``giropops`` entry point in a child interpreter and learn which modules it imported."""

from __future__ import annotations

# ``python -c MODULES_WRAPPER OUT ARGS...``: runs the entry point with ARGS, then writes its exit code and the
# names of the imported modules (JSON) to OUT, and exits with that code.
# A command that ends without the interpreter's teardown (``giropops.cli.copy.exit_now``: ``os._exit``) is
# stopped at that point instead, so that the wrapper still sees what it imported.
MODULES_WRAPPER = """
import json, os, sys
def _exit(code):
    raise SystemExit(code)
os._exit = _exit
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
