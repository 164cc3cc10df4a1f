"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests: Debian's server binaries, a temporary directory.

    with running_postgres() as cluster:
        url = cluster.create_database("t_1")  # postgresql://postgres@127.0.0.1:PORT/t_1, empty

How: ``initdb`` creates a cluster in a fresh temporary directory with trust authentication for loopback and
its own socket directory only, ``pg_ctl start`` runs it on a free port of 127.0.0.1, and ``pg_ctl stop -m
fast`` stops exactly that cluster at the end before the directory is removed. PostgreSQL refuses to run as
root, so as root (CI) the directory belongs to the ``postgres`` system user and both commands run as it
(``runuser``). The directory is not under pytest's tmp_path: that one is private to the current user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence

from testing.procs import free_port

SYSTEM_USER = "postgres"  # Debian's postgresql package creates it
SUPERUSER = "postgres"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Trust, but only on the cluster's own socket directory and loopback.
_PG_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


def bindir() -> pathlib.Path:
    """Where initdb and pg_ctl live: not on PATH on Debian (``/usr/lib/postgresql/<major>/bin``)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        candidate = pathlib.Path(found.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    majors = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(pathlib.Path(p).parts[-3]))
    if not majors:
        raise FileNotFoundError("PostgreSQL server binaries not found: apt-get install postgresql")
    return pathlib.Path(majors[-1]).parent


class PostgresCluster:
    """One cluster in ``directory``: ``data/`` holds the cluster, the directory itself the socket and log."""

    def __init__(self, directory: pathlib.Path, *, port: int | None = None):
        self.directory = directory
        self.data = directory / "data"
        self.log_path = directory / "postgres.log"
        self.port = port or free_port()
        self._bin = bindir()

    def start(self) -> None:
        """initdb (no fsync of the new files: the cluster is thrown away), then pg_ctl start; waits until ready."""
        self._run([self._bin / "initdb", "-D", self.data, "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
                   "--auth=trust", "--no-sync"])  # fmt: skip
        (self.data / "pg_hba.conf").write_text(_PG_HBA)
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.directory}'"
        try:
            self._run([self._bin / "pg_ctl", "-D", self.data, "-l", self.log_path, "-o", options, "-w", "-t", "60",
                       "start"])  # fmt: skip
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.log()[-4000:]}") from None

    @property
    def url(self) -> str:
        """The ``postgres`` maintenance database; tests use a fresh database of their own."""
        return self.database_url(SUPERUSER)

    def database_url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """Creates the empty database ``name`` and returns its URL."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.sql(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def sql(self, statement: str) -> str:
        """Runs one statement with psql over loopback (no password: trust) and returns its output."""
        argv = [self._bin / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                str(self.port), "-U", SUPERUSER, "-d", SUPERUSER, "-c", statement]  # fmt: skip
        done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql {statement!r} failed: {done.stderr.strip()}")
        return done.stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stops this cluster (by its data directory) and waits for it; fast: open connections are ended."""
        if (self.data / "postmaster.pid").exists():
            self._run([self._bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])

    def _run(self, argv: Sequence[str | os.PathLike[str]]) -> None:
        command = [str(a) for a in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        # cwd: the postgres user may not be allowed into the checkout.
        done = subprocess.run(command, cwd=self.directory, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{pathlib.Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()}")


def _private_directory() -> pathlib.Path:
    directory = pathlib.Path(tempfile.mkdtemp(prefix="monitoring-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SYSTEM_USER, SYSTEM_USER)
    return directory


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresCluster]:
    """A started cluster; stopped and its directory removed at the end, also when the start failed."""
    directory = _private_directory()
    cluster = PostgresCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
