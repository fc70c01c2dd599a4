"""``giropops demo``: from source to a running, scanned, signed image in one command.

Each step prints one or two lines of what it did; long steps draw progress on a
terminal; the run ends with a summary table (also written as ``summary.json``).
The demo itself is ``giropops.demo``; this module parses, asks for the key's password and prints.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
import time
from pathlib import Path

from giropops.cli import _names
from giropops.cli.db import add_fetch_options, ensure_options
from giropops.cli.progress import TerminalProgress
from giropops.errors import UsageError

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable's name, not a password
STEPS = _names.DEMO_STEPS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="build, SBOM, scan, compare, sign, verify and run giropops-senhas in one go",
        description="The main job: build the giropops-senhas image without a daemon, write its SBOM, scan it, "
                    "compare it with the conventional python:3.11-slim-style image, sign and verify it, and run "
                    "it (with Redis) when a container engine works here.",
    )
    p.add_argument("--workdir", type=Path, default=Path("giropops-demo"), metavar="DIR",
                   help="where every artefact goes (default: ./giropops-demo)")
    p.add_argument("--spec", type=Path, default=None, metavar="FILE",
                   help="the app's build spec (default: giropops.yaml here or in a parent directory)")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help=f"vulnerability database (default: ${_names.DB_ENV_VAR} or the user's cache directory)")
    add_fetch_options(p)
    p.add_argument("--tag", default=_names.DEMO_DEFAULT_TAG, metavar="REF",
                   help=f"name of the built image (default: {_names.DEMO_DEFAULT_TAG})")
    p.add_argument("--no-run", action="store_true", help="do not load and run the image in a container engine")
    p.add_argument("--no-compare", action="store_true", help="skip the conventional image")
    p.add_argument("--port", type=int, default=5000, metavar="N",
                   help="port of the running app on 127.0.0.1 (default 5000; 0 or a busy port: a free one)")
    p.add_argument("--stop", action="store_true",
                   help="stop the container and redis-server an earlier demo in --workdir started, and exit")
    p.set_defaults(func=run)


class _TransientProgress(TerminalProgress):
    """Progress drawn on one line that the next step line replaces: the step lines are the record."""

    def finish(self, key: str, message: str | None = None) -> None:
        self._tasks.pop(key, None)
        self._units.pop(key, None)
        self.clear()

    def note(self, message: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[2K{message}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


class _Out:
    """Step lines on stdout, flushed so they interleave with progress drawn on stderr."""

    def __init__(self, progress: _TransientProgress) -> None:
        self.n = 0
        self.progress = progress

    def step(self, title: str) -> None:
        self.n += 1
        self.progress.clear()
        print(f"[{self.n}/{STEPS}] {title}", flush=True)

    def line(self, text: str) -> None:
        self.progress.clear()
        print(f"      {text}", flush=True)


def _password(out: _Out, generating: bool) -> bytes:
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env.encode()
    if sys.stdin.isatty():
        first = getpass.getpass("Enter password for private key: ")
        if generating and getpass.getpass("Enter password for private key again: ") != first:
            raise UsageError("passwords do not match")
        return first.encode()
    out.line(f"warning: {PASSWORD_ENV} is not set and there is no terminal to ask: the key uses an EMPTY password")
    return b""


def _stop_command(workdir: Path) -> str:
    """A stop command that works without an activated virtualenv: this installation's own ``giropops``."""
    script = Path(sys.executable).parent / "giropops"
    exe = str(script) if script.is_file() else f"{sys.executable} -m giropops"
    try:
        rel = os.path.relpath(script, Path.cwd())
        if script.is_file() and not rel.startswith(".."):
            exe = rel if "/" in rel else f"./{rel}"
    except ValueError:
        pass
    return f"{exe} demo --stop --workdir {shlex.quote(str(workdir))}"


def run(args: argparse.Namespace) -> int:
    from giropops import demo
    from giropops.demo import render
    from giropops.oci.reference import Reference
    from giropops.sign.errors import WrongPasswordError
    from giropops.vuln.db import store as dbstore

    workdir: Path = args.workdir
    paths = demo.DemoPaths(workdir)
    if args.stop:
        stopped = demo.stop(paths)
        if stopped.container is None and stopped.redis_pid is None:
            print(f"nothing of a demo is running for {workdir}")
        if stopped.container:
            print(f"stopped and removed container {stopped.container}")
        if stopped.redis_pid:
            print(f"stopped redis-server (pid {stopped.redis_pid})")
        for note in stopped.notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    opts = demo.DemoOptions(
        workdir=workdir, spec=demo.find_spec(args.spec, Path.cwd()), tag=str(Reference.parse(args.tag)),
        db_path=args.db if args.db is not None else dbstore.default_path(), db_given=args.db is not None,
        compare=not args.no_compare, run=not args.no_run, port=args.port, stop_command=_stop_command(workdir),
        fetch=ensure_options(args),
    )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {workdir}: {exc.strerror}") from exc
    progress = _TransientProgress()
    out = _Out(progress)
    started = time.monotonic()
    generating = not paths.private_key.exists() and not paths.public_key.exists()
    try:
        outcome = demo.run_demo(opts, out, progress, lambda generating: _password(out, generating))
    except WrongPasswordError as exc:
        if generating:
            raise
        given = (f"{PASSWORD_ENV} does not open it" if os.environ.get(PASSWORD_ENV) is not None
                 else f"{PASSWORD_ENV} is not set and the empty password does not open it"
                 if not sys.stdin.isatty() else "the password typed does not open it")
        raise WrongPasswordError(
            f"{paths.private_key} is the key an earlier demo made in {workdir}, and {given}: set {PASSWORD_ENV} "
            f"to the password it was made with, or delete {paths.private_key} and {paths.public_key} to make a "
            "new pair"
        ) from exc
    progress.clear()
    print()
    print(render.comparison_table(outcome.ours, outcome.conventional))
    print(f"signature: verified ({outcome.keys.public})")
    print(f"running:   {outcome.running.url}" if outcome.running else "running:   no (see step 6)")
    print(f"artefacts: {workdir}/ (summary.json)   time: {time.monotonic() - started:.0f} s")
    return 0
