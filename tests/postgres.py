"""A throwaway PostgreSQL cluster for the test run, started by pytest-postgresql's executor.

`GERI_TEST_POSTGRES` (a server and a role that may create databases) wins when it is set.
Otherwise, wherever PostgreSQL's server binaries are installed, the run starts its own cluster
on a free loopback port in a temporary directory and removes it afterwards; nothing needs to
be set up by hand. PostgreSQL refuses to run as root, so as root the cluster is run by the
`postgres` user that Debian's package creates (through `runuser`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOW_TO = (
    "the PostgreSQL tests need PostgreSQL's server binaries (Debian: apt-get install "
    "postgresql) or GERI_TEST_POSTGRES=postgresql://USER:PASSWORD@HOST/DB naming a role that "
    "may create databases"
)


def find_pg_ctl() -> str | None:
    """pg_ctl of the newest installed PostgreSQL, or None."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        candidates.append(os.path.join(bindir, "pg_ctl"))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


@contextmanager
def throwaway_cluster(pg_ctl: str) -> Iterator[str]:
    """Start a cluster with `pg_ctl`; yields an admin URL; stops and deletes it afterwards."""
    from pytest_postgresql.executors import PostgreSQLExecutor

    root = Path(tempfile.mkdtemp(prefix="geri-pg-"))
    executable = pg_ctl
    if os.geteuid() == 0:
        executable = _as_postgres(pg_ctl, root)
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=executable,
        host="127.0.0.1",
        port=port,
        datadir=str(root / "data"),
        unixsocketdir=str(root),
        logfile=str(root / "server.log"),
        startparams="-w",
        dbname="postgres",
        user="postgres",
        postgres_options="-c fsync=off -c synchronous_commit=off -c max_connections=200",
    )
    try:
        executor.start()
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if executor.running():
            executor.stop()
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres(pg_ctl: str, root: Path) -> str:
    """A pg_ctl wrapper that runs it as the `postgres` user, who then owns `root`."""
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as 'postgres'")
    shutil.chown(root, user="postgres", group="postgres")
    root.chmod(0o755)
    wrapper = root / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\ncd / && exec {runuser} -u postgres -- {pg_ctl} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(wrapper)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
