"""A throwaway PostgreSQL server for tests and benchmarks.

``TemporaryPostgres`` runs ``initdb`` and ``pg_ctl`` from a local PostgreSQL installation
on a fresh data directory, a free loopback port and a private socket directory, with
durability switched off (fsync, synchronous_commit, full_page_writes) because the data
is thrown away. Running as root, the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresNotAvailable", "TemporaryPostgres", "find_postgres_bin", "free_port"]


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
