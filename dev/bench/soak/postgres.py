"""A throw-away PostgreSQL server (Debian's package) on a loopback port, for the soak's metadata database.

Production Airflow deployments keep their metadata in PostgreSQL, and several api-server replicas share it; the
soak does the same. The cluster lives in a temporary directory, listens on 127.0.0.1 only (no unix socket
outside that directory), trusts loopback connections (nothing else can reach it) and is stopped and removed by
the context manager. PostgreSQL refuses to run as root, so when the soak runs as root (CI here) the cluster is
created and run as the ``postgres`` account Debian's package adds.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dev.airflow_server import free_port

RUN_AS = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL Airflow takes (``[database] sql_alchemy_conn``); its async twin uses asyncpg."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise PostgresUnavailable(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): dev/lib/setup.sh installs "
            "Debian's package 'postgresql'; or run `apt-get install postgresql`."
        )
    return Path(found[-1]).parent


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError as exc:
        raise PostgresUnavailable(f"running as root, and there is no '{RUN_AS}' account to run PostgreSQL as") from exc
    return ["runuser", "-u", RUN_AS, "--", *argv]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise PostgresUnavailable(
            f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


@contextmanager
def running_postgres(databases: tuple[str, ...] = ("airflow",)) -> Iterator[Postgres]:
    """Start a cluster, create ``databases``, yield it, then stop it and delete its files."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="soak-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    user = RUN_AS if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        server_account = pwd.getpwnam(RUN_AS)
        for path in (root, sockets):
            os.chown(path, server_account.pw_uid, server_account.pw_gid)
    port = free_port()
    started = False
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            "initdb",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{sockets}'",
            "max_connections": "300",  # several api-server replicas, each with its own pool
            "fsync": "off",  # a throw-away cluster: durability is not what is measured
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        started = True  # before the start: one that times out may still come up; stopping a stopped one is harmless
        _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            "pg_ctl start",
        )
        for database in databases:
            _run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
                f"createdb {database}",
            )
        yield Postgres(port=port, user=user)
    finally:
        if started:
            stop = _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"])
            subprocess.run(stop, capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)
