"""Purge benchmark: ``datalayer.purge.purge_deleted`` on many soft-deleted sessions, PostgreSQL.

A throwaway PostgreSQL gets ``--sessions`` sessions soft-deleted 40 days ago, each with two
messages and one tool call (linked to the first message), plus live sessions. The rows are
cloned server-side from one template row per table (``INSERT ... SELECT`` over
``generate_series``), with time-ordered ids like the application's UUIDv7. Then the sessions
are purged (``--older-than 30d``, ``--batch-size``) while two probes run concurrently:

- an appender: one unit after another, append a message to a live session and add usage;
- a restorer: restores a random old soft-deleted session (or finds it purged), the writer
  that contends with the purge for the same rows, so its wait shows the longest lock held.

Reported: purge time and rows/s, batch durations, each probe's unit latency (median, p99, max)
before and during the purge, and the lock waits over 100 ms the server logged
(``log_lock_waits``, with the longest wait). ``--sessions 1000000`` is the issue's size.

    python benchmarks/purge.py --sessions 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from datalayer import Database  # noqa: E402
from datalayer.errors import DataLayerError  # noqa: E402
from datalayer.factories import MessageFactory, SessionFactory, ToolCallFactory, UserFactory, persist  # noqa: E402
from datalayer.models import MessageModel, SessionModel, ToolCallModel  # noqa: E402
from datalayer.purge import purge_deleted  # noqa: E402
from datalayer.repositories import MessageRepository, SessionRepository  # noqa: E402
from datalayer.testing import TemporaryPostgres  # noqa: E402
from datalayer.types import utc_now  # noqa: E402

LIVE_SESSIONS = 1_000
CHUNK = 100_000  # sessions cloned per INSERT ... SELECT


def time_ordered_id(i: sa.ColumnElement[int], kind: int) -> sa.ColumnElement[Any]:
    """Return a UUID expression ordered by ``i``: 48 bits of ``i``, version 7, then a kind marker."""
    hex_digits = sa.func.lpad(sa.func.to_hex(i), 12, "0") + sa.literal(f"7{kind:03x}8000000000000000")
    return sa.cast(hex_digits, sa.Uuid)


Override = Callable[[sa.ColumnElement[int]], sa.ColumnElement[Any]]


def clone(
    table: sa.Table, template: UUID, overrides: dict[str, Override], first: int, last: int
) -> sa.Insert:
    """Return ``INSERT INTO table SELECT`` the template row once per i in [first, last], with overrides."""
    series = sa.func.generate_series(first, last).table_valued("i").render_derived(name="series")
    i = series.c.i
    columns = [(overrides[c.name](i) if c.name in overrides else c).label(c.name) for c in table.columns]
    select = sa.select(*columns).select_from(table).join(series, sa.true()).where(table.c.id == template)
    return sa.insert(table).from_select([c.name for c in table.columns], select)


async def load(db: Database, sessions: int) -> None:
    """Insert the soft-deleted sessions with their children, and the live sessions."""
    async with db.session() as s:
        (user,) = await persist(s, UserFactory, 1)
        (template,) = await persist(s, SessionFactory, 1, user_id=user.id, status="completed")
        message = (await persist(s, MessageFactory, 1, session_id=template.id))[0]
        (call,) = await persist(s, ToolCallFactory, 1, session_id=template.id, message_id=message.id)
        await persist(s, SessionFactory, LIVE_SESSIONS, user_id=user.id)
    now = utc_now()
    deleted_at = sa.literal(now - timedelta(days=40))
    sessions_t, messages_t, calls_t = (m.__table__ for m in (SessionModel, MessageModel, ToolCallModel))
    for first in range(1, sessions + 1, CHUNK):
        last = min(first + CHUNK - 1, sessions)
        async with db.session() as s:
            conn = await s.connection()
            await conn.execute(
                clone(
                    sessions_t,
                    template.id,
                    {"id": lambda i: time_ordered_id(i, 1), "deleted_at": lambda i: deleted_at},
                    first,
                    last,
                )
            )
            for number in (1, 2):
                await conn.execute(
                    clone(
                        messages_t,
                        message.id,
                        {
                            "id": lambda i, n=number: time_ordered_id(i, 1 + n),
                            "session_id": lambda i: time_ordered_id(i, 1),
                            "sequence_number": lambda i, n=number: sa.literal(n),
                        },
                        first,
                        last,
                    )
                )
            await conn.execute(
                clone(
                    calls_t,
                    call.id,
                    {
                        "id": lambda i: time_ordered_id(i, 4),
                        "session_id": lambda i: time_ordered_id(i, 1),
                        "message_id": lambda i: time_ordered_id(i, 2),
                        "tool_use_id": lambda i: sa.literal("bench-") + sa.cast(i, sa.String),
                    },
                    first,
                    last,
                )
            )
        print(f"  loaded {last:,} sessions", flush=True)
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE"))


class Probe:
    """Runs one kind of unit over and over, recording each unit's latency and when it ended."""

    def __init__(self, name: str, unit: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.unit = unit
        self.samples: list[tuple[float, float]] = []  # (end time, seconds)
        self.errors: dict[str, int] = {}
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                await self.unit()
            except DataLayerError as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            ended = time.monotonic()
            self.samples.append((ended, ended - started))
            await asyncio.sleep(0.002)

    def summary(self, start: float, end: float) -> dict[str, float | int]:
        latencies = sorted(seconds for ended, seconds in self.samples if start <= ended <= end)
        if not latencies:
            return {"units": 0}
        return {
            "units": len(latencies),
            "median_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
            "max_ms": round(latencies[-1] * 1000, 2),
        }


async def benchmark(sessions: int, batch_size: int) -> dict[str, Any]:
    """Load, then purge while the probes run; return the figures."""
    server = TemporaryPostgres(
        database="purge_bench", settings={"log_lock_waits": "on", "deadlock_timeout": "100ms"}
    )
    server.start()
    try:
        async with Database(server.url, pool_size=4) as db:
            await db.create_all()
            started = time.monotonic()
            await load(db, sessions)
            load_seconds = time.monotonic() - started
            async with db.session(read_only=True) as s:
                live = list(
                    (
                        await s.exec(sa.select(SessionModel.id).where(SessionModel.deleted_at.is_(None)))
                    ).scalars()
                )
            rng = random.Random(13)

            async def append() -> None:
                session_id = rng.choice(live)
                async with db.session() as s:
                    await MessageRepository(s).append(session_id, message_type="assistant", content={"t": 1})
                    await SessionRepository(s).add_usage(session_id, total_messages=1, api_output_tokens=3)

            async def restore() -> None:
                i = rng.randrange(1, sessions + 1)
                async with db.session() as s:
                    ident = (await s.exec(sa.select(time_ordered_id(sa.literal(i), 1)))).scalar_one()
                    await SessionRepository(s).restore(ident)

            probes = [Probe("append+add_usage", append), Probe("restore", restore)]
            tasks = [asyncio.create_task(p.run()) for p in probes]
            await asyncio.sleep(3)
            before_end = purge_start = time.monotonic()
            batches: list[float] = []
            last = [purge_start]

            def on_batch(n: int) -> None:
                now = time.monotonic()
                batches.append(now - last[0])
                last[0] = now

            purged = await purge_deleted(
                db, SessionModel, timedelta(days=30), batch_size=batch_size, on_batch=on_batch
            )
            purge_end = time.monotonic()
            for p in probes:
                p.stop.set()
            await asyncio.gather(*tasks)
            async with db.session(read_only=True) as s:
                left = {
                    m.__tablename__: (await s.exec(sa.select(sa.func.count()).select_from(m))).scalar_one()
                    for m in (SessionModel, MessageModel, ToolCallModel)
                }
        log = server.log_file.read_text()
        lock_waits = [line for line in log.splitlines() if "still waiting for" in line]
        # With log_lock_waits the server also logs "... acquired <lock> ... after <ms> ms" for each.
        acquired = [float(ms) for ms in re.findall(r"acquired .* after ([0-9.]+) ms", log)]
        restored = sessions - purged
        return {
            "sessions": sessions,
            "children_per_session": "2 messages + 1 tool call",
            "batch_size": batch_size,
            "load_seconds": round(load_seconds, 1),
            "purge_seconds": round(purge_end - purge_start, 1),
            "sessions_purged": purged,
            "restored_by_the_probe_before_the_purge_reached_them": restored,
            "rows_deleted_incl_cascade_approx": purged * 4,
            "rows_per_second": round(purged * 4 / (purge_end - purge_start)),
            "batches": len(batches),
            "batch_ms": {
                "median": round(statistics.median(batches) * 1000, 1),
                "max": round(max(batches) * 1000, 1),
            },
            "probes_before_purge": {p.name: p.summary(before_end - 3, before_end) for p in probes},
            "probes_during_purge": {p.name: p.summary(purge_start, purge_end) for p in probes},
            "probe_errors": {p.name: p.errors for p in probes},
            "server_lock_waits_over_100ms": len(lock_waits),
            "longest_lock_wait_ms": max(acquired, default=0.0),
            "rows_left": left,
        }
    finally:
        server.cleanup()


def main() -> None:
    """Parse the arguments, run the benchmark, print and save the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    figures = asyncio.run(benchmark(args.sessions, args.batch_size))
    text = json.dumps(figures, indent=2)
    print(text)
    out = ROOT / "benchmarks" / "results" / "purge.json"
    out.write_text(text + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
