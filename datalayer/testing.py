"""A throwaway PostgreSQL server for tests and benchmarks.

``TemporaryPostgres`` runs ``initdb`` and ``pg_ctl`` from a local PostgreSQL installation
on a fresh data directory, a free loopback port and a private socket directory, with
durability switched off (fsync, synchronous_commit, full_page_writes) because the data
is thrown away. Running as root, the server runs as the ``postgres`` user.

``TemporaryPgBouncer`` puts pgbouncer (transaction pooling) in front of one,
``TemporaryReplica`` starts a streaming hot standby of one with ``pg_basebackup -R``, and
``TemporarySyncStandby`` a synchronous standby that can be promoted (failover tests).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "COUNTS",
    "PgBouncerNotAvailable",
    "PostgresNotAvailable",
    "TemporaryPgBouncer",
    "TemporaryPostgres",
    "TemporaryReplica",
    "TemporarySyncStandby",
    "TestCounts",
    "find_pgbouncer",
    "find_postgres_bin",
    "free_port",
]


class PostgresNotAvailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_postgres_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    Looks at ``$DATALAYER_PG_BIN``, then ``/usr/lib/postgresql/<newest>/bin``, then ``PATH``.
    """
    configured = os.environ.get("DATALAYER_PG_BIN")
    candidates: list[Path] = [Path(configured)] if configured else []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        candidates.extend(v / "bin" for v in versions)
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryPostgres:
    """A PostgreSQL server on a temporary data directory; ``start()`` returns its URL."""

    def __init__(
        self,
        bin_dir: Path | None = None,
        *,
        database: str = "datalayer",
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        found = bin_dir or find_postgres_bin()
        if found is None:
            raise PostgresNotAvailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; "
                "install PostgreSQL or set DATALAYER_PG_BIN"
            )
        self.bin_dir = found
        self.database = database
        self.port = port or free_port()
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            **(settings or {}),
        }
        self.base_dir = Path(tempfile.mkdtemp(prefix="datalayer-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_file = self.base_dir / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres and not _postgres_user_exists():
            raise PostgresNotAvailable("running as root needs a 'postgres' user to run the server")
        self.running = False

    @property
    def url(self) -> str:
        """Return the asyncpg URL of the test database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({completed.returncode}): "
                f"{completed.stderr.strip() or completed.stdout.strip()}\n{log[-2000:]}"
            )

    def initdb(self) -> None:
        """Create the data directory (once)."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base_dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> str:
        """Initialise (first time), start the server, create the database; return the URL."""
        first_start = not self.data_dir.exists()
        if first_start:
            self.initdb()
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.socket_dir} {options}", "start",
        )  # fmt: skip
        self.running = True
        if first_start:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data directory (``start()`` brings it back)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")
            self.running = False

    def cleanup(self) -> None:
        """Stop the server and delete its data directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def _postgres_user_exists() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


def find_pgbouncer() -> Path | None:
    """Return the ``pgbouncer`` executable (``$DATALAYER_PGBOUNCER``, ``PATH``, ``/usr/sbin``), or None."""
    configured = os.environ.get("DATALAYER_PGBOUNCER")
    candidates: list[str | None] = [configured, shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class PgBouncerNotAvailable(RuntimeError):
    """The ``pgbouncer`` executable was not found on this machine."""


class TemporaryPgBouncer:
    """pgbouncer in transaction pooling mode in front of a ``TemporaryPostgres``.

    It runs as a daemon with a pidfile in a temporary directory, as the ``postgres`` user
    when started by root (pgbouncer refuses to run as root). ``start()`` returns a URL
    with the same database name as the server's, on pgbouncer's own port.
    """

    def __init__(
        self,
        server: TemporaryPostgres,
        *,
        executable: Path | None = None,
        port: int | None = None,
        pool_size: int = 20,
        max_client_conn: int = 500,
    ) -> None:
        found = executable or find_pgbouncer()
        if found is None:
            raise PgBouncerNotAvailable("pgbouncer not found; install it (apt-get install pgbouncer)")
        self.executable = found
        self.server = server
        self.port = port or free_port()
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.base_dir = Path(tempfile.mkdtemp(prefix="datalayer-pgbouncer-"))
        self.config_file = self.base_dir / "pgbouncer.ini"
        self.pid_file = self.base_dir / "pgbouncer.pid"
        self.log_file = self.base_dir / "pgbouncer.log"
        self._as_postgres = os.geteuid() == 0
        self.running = False

    @property
    def url(self) -> str:
        """Return the asyncpg URL of the server's database, through pgbouncer."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.server.database}"

    def config(self) -> str:
        """Return the pgbouncer.ini text: transaction pooling, trust auth, loopback only."""
        auth_file = self.base_dir / "users.txt"
        return "\n".join(
            [
                "[databases]",
                f"* = host=127.0.0.1 port={self.server.port}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                f"unix_socket_dir = {self.base_dir}",
                "auth_type = trust",
                f"auth_file = {auth_file}",
                "pool_mode = transaction",
                f"default_pool_size = {self.pool_size}",
                f"max_client_conn = {self.max_client_conn}",
                f"pidfile = {self.pid_file}",
                f"logfile = {self.log_file}",
                # asyncpg sends these at startup; pgbouncer refuses unknown ones.
                "ignore_startup_parameters = extra_float_digits,options,statement_timeout",
                "server_reset_query =",
                "",
            ]
        )

    def start(self) -> str:
        """Write the config, start pgbouncer as a daemon, wait until it accepts; return its URL."""
        (self.base_dir / "users.txt").write_text('"postgres" ""\n')
        self.config_file.write_text(self.config())
        if self._as_postgres:
            for path in (self.base_dir, self.config_file, self.base_dir / "users.txt"):
                shutil.chown(path, "postgres", "postgres")
        command = [str(self.executable), "-d", str(self.config_file)]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"pgbouncer failed to start: {completed.stderr.strip()}\n{self._log_tail()}")
        _wait_for_port(self.port, what="pgbouncer", log=self._log_tail)
        self.running = True
        # The daemon may write its pidfile just after it starts listening; stop() needs it.
        deadline = time.monotonic() + 10
        while not self._read_pid() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.url

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _log_tail(self) -> str:
        return self.log_file.read_text()[-2000:] if self.log_file.exists() else ""

    def stop(self) -> None:
        """Stop pgbouncer (SIGTERM to the pid in its pidfile) and wait for it to exit."""
        if not self.running:
            return
        self.running = False
        pid = self._read_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def cleanup(self) -> None:
        """Stop pgbouncer and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> TemporaryPgBouncer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


def _wait_for_port(port: int, *, what: str, log: Callable[[], str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on port {port}:\n{log()}") from None
            time.sleep(0.05)


class TemporaryReplica(TemporaryPostgres):
    """A streaming hot-standby replica of a running ``TemporaryPostgres``.

    ``start()`` copies the primary with ``pg_basebackup -R`` (which writes the standby
    signal and ``primary_conninfo``) and starts it read-only on its own port.
    """

    def __init__(self, primary: TemporaryPostgres, *, port: int | None = None) -> None:
        super().__init__(primary.bin_dir, database=primary.database, port=port, settings=primary.settings)
        self.primary = primary

    def initdb(self) -> None:
        """Copy the primary's data directory over the replication protocol."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base_dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip

    def start(self) -> str:
        """Create the copy (first time) and start the standby; return its URL."""
        if not self.data_dir.exists():
            self.initdb()
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.socket_dir} {options}", "start",
        )  # fmt: skip
        self.running = True
        return self.url


class TemporarySyncStandby(TemporaryReplica):
    """A synchronous streaming standby of a running ``TemporaryPostgres``, promotable to primary.

    ``start()`` makes the copy, starts it, names it in the primary's
    ``synchronous_standby_names`` and waits until the primary reports it ``sync``: from then
    on every commit the primary acknowledges is already on the standby. The primary must run
    with ``synchronous_commit=on`` (``TemporaryPostgres`` switches it off by default).
    ``promote()`` turns the standby into a primary (``pg_ctl promote``).
    """

    def __init__(
        self, primary: TemporaryPostgres, *, name: str = "datalayer_standby", port: int | None = None
    ):
        if not name.isidentifier() or not name.isascii():
            # It becomes the standby's cluster_name and an entry of synchronous_standby_names.
            raise ValueError(f"standby name must be a plain identifier, got {name!r}")
        if primary.settings.get("synchronous_commit") != "on":
            raise ValueError(
                "the primary of a synchronous standby needs settings={'synchronous_commit': 'on'}"
            )
        super().__init__(primary, port=port)
        self.name = name
        # The WAL receiver reports cluster_name as its application_name on the primary.
        self.settings = {**self.settings, "cluster_name": name}

    def start(self, timeout: float = 30.0) -> str:
        """Copy the primary (first time), start, become its synchronous standby; return the URL."""
        url = super().start()
        names = {"name": self.name}
        _psql(self.primary, "ALTER SYSTEM SET synchronous_standby_names = :'name'", names)
        _psql(self.primary, "SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        query = "SELECT sync_state FROM pg_stat_replication WHERE application_name = :'name'"
        while _psql(self.primary, query, names) != "sync":
            if time.monotonic() > deadline:
                raise RuntimeError(f"standby {self.name} did not become synchronous within {timeout} s")
            time.sleep(0.05)
        return url

    def promote(self) -> None:
        """Turn the standby into a primary; return once it accepts writes."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "promote")


def _psql(server: TemporaryPostgres, sql: str, variables: dict[str, str] | None = None) -> str:
    """Run one SQL command on a server's ``postgres`` database with psql; return its bare output.

    ``:'name'`` in the command is a variable, quoted as a literal by psql.
    """
    command = [
        str(server.bin_dir / "psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(server.port),
        "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
    ]  # fmt: skip
    for name, value in (variables or {}).items():
        command += ["-v", f"{name}={value}"]
    if server._as_postgres:
        command = ["runuser", "-u", "postgres", "--", *command]
    # Through stdin, not -c: psql substitutes variables only in what it reads as a script.
    completed = subprocess.run(command, input=sql + "\n", capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"psql failed ({completed.returncode}): {completed.stderr.strip()}")
    return completed.stdout.strip()


class TestCounts:
    """Named counts (inputs tried, faults injected) printed in pytest's terminal summary.

    Register the shared instance once: ``config.pluginmanager.register(COUNTS, "datalayer-counts")``;
    pytest then calls its ``pytest_terminal_summary`` hook.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, section: str, name: str, amount: int = 1) -> None:
        """Add ``amount`` to a named count of a section."""
        bucket = self.counts.setdefault(section, {})
        bucket[name] = bucket.get(name, 0) + amount

    def lines(self) -> list[str]:
        """Return one printable line per section."""
        return [
            f"{section}: " + ", ".join(f"{name}={n}" for name, n in sorted(values.items()))
            for section, values in sorted(self.counts.items())
        ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the counts (pytest hook)."""
        if self.counts:
            terminalreporter.section("datalayer: inputs tried and faults injected")
            for line in self.lines():
                terminalreporter.write_line(line)


#: The counts shared by the reliability tests.
COUNTS = TestCounts()
