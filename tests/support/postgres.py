"""A real PostgreSQL server (Debian's ``postgresql`` package) for tests.

``initdb`` refuses to run as root, so (when the tests run as root) the cluster belongs to the
unprivileged ``postgres`` account the package creates: the data and socket directories are a private temporary
directory handed to it, the server listens on 127.0.0.1 on a free port with trust
authentication for one superuser role, and ``stop`` ends the server by the PID it was
started with, then removes the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.services import free_port, require_binary, stop, wait_for_port

ROLE = "giropops"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    return Path(require_binary("initdb")).parent


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="giropops-pg-"))
        # initdb refuses root: as root, the cluster belongs to the account Debian's package creates;
        # anyone else runs it as themselves.
        self.account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_postgres(self) -> dict[str, object]:
        common: dict[str, object] = {"cwd": str(self.root),
                                     "env": {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}}
        if self.account is None:
            return common
        return {**common, "user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def start(self) -> None:
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", ROLE, "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            check=True, capture_output=True, **self._as_postgres(),  # type: ignore[call-overload]
        )
        log = open(self.root / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=60"],
            stdout=log, stderr=log, **self._as_postgres(),  # type: ignore[call-overload]
        )
        wait_for_port(self.port, self.proc, timeout=30)
        deadline = time.monotonic() + 30
        while True:  # listening is not yet accepting: wait until a query works
            try:
                self.execute("postgres", "SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def execute(self, database: str, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, name: str) -> str:
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.proc is not None:
                stop(self.proc)  # SIGTERM to the postmaster's own PID: a "smart" shutdown
                self.proc = None
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
