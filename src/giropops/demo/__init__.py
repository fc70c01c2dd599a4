"""``giropops demo``: an application of the library, not part of it.

``steps`` (build, SBOM, scan, compare, sign + verify: library calls that write into one work
directory), ``runtime`` (podman/docker and redis-server: starting, checking and stopping the app),
``render`` (the words and the closing table, as text) and ``flow`` (the steps in order, their lines
handed to a ``Report``).  ``giropops.cli.demo`` parses the arguments, prints, and asks for passwords.
"""

from __future__ import annotations

from giropops.demo.flow import STEPS, DemoOptions, Outcome, Report, run_demo
from giropops.demo.runtime import stop
from giropops.demo.steps import DEFAULT_TAG, DemoError, DemoPaths, find_spec

__all__ = ["DEFAULT_TAG", "STEPS", "DemoError", "DemoOptions", "DemoPaths", "Outcome", "Report", "find_spec",
           "run_demo", "stop"]
