"""Shared machinery of the factories: one seeded random stream, timestamps, ids, vocabularies.

Every factory draws from the same ``random.Random`` and the same ``Faker`` instance, so
``seed_factories(seed)`` makes everything that follows reproducible across processes,
and ids never collide between factories (one stream, not one stream per factory).
Timestamps are spread over the 30 days before a fixed anchor (:data:`ANCHOR`) rather
than "now", so that the same seed gives the same rows whenever it runs.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import count
from random import Random
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from faker import Faker
from polyfactory import Use
from polyfactory.exceptions import ConfigurationException
from polyfactory.factories.pydantic_factory import ModelFactory
from polyfactory.field_meta import FieldMeta

from datalayer.models import EntityModel
from datalayer.types import MONEY_SCALE

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = [
    "ANCHOR",
    "TAGS",
    "TOOL_NAMES",
    "DataFactory",
    "seed_factories",
]

T = TypeVar("T", bound=EntityModel)

#: Generated timestamps lie in the 30 days before this instant (fixed, for reproducibility).
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 30 * 24 * 3600

#: The tag vocabulary of tasks, reports and session templates.
TAGS = (
    "analysis",
    "automation",
    "backend",
    "bugfix",
    "data",
    "docs",
    "frontend",
    "infra",
    "ml",
    "ops",
    "refactor",
    "research",
    "security",
    "testing",
    "weekly",
)
#: Tool names used by tool calls, permission decisions and hooks.
TOOL_NAMES = ("Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch", "TodoWrite", "Task")
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")
PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions")
_BASE62 = string.digits + string.ascii_letters

RNG = Random()
FAKER = Faker("en_US")


class _State:
    """Counters that must restart with the seed (serial numbers, message sequences)."""

    serial = count(1)
    sequences: defaultdict[UUID, int] = defaultdict(int)


def seed_factories(seed: int) -> None:
    """Seed every factory at once; the same seed then yields the same data in any process."""
    RNG.seed(seed)
    FAKER.seed_instance(seed)
    # The serial base comes from the seed, so that two runs with different seeds (or none)
    # into the same database do not produce the same usernames.
    _State.serial = count(1 + RNG.randrange(10**9))
    _State.sequences = defaultdict(int)


def next_serial() -> int:
    """Return the next serial number (unique within one seeding)."""
    return next(_State.serial)


def next_sequence(session_id: UUID) -> int:
    """Return the next message sequence number built for ``session_id`` in this process."""
    _State.sequences[session_id] += 1
    return _State.sequences[session_id]


def past_time() -> datetime:
    """Return an aware UTC time within the 30 days before :data:`ANCHOR`."""
    return ANCHOR - timedelta(microseconds=RNG.randrange(_SPAN_SECONDS * 1_000_000))


def later(start: datetime, max_seconds: float) -> datetime:
    """Return an aware UTC time up to ``max_seconds`` after ``start`` (whole microseconds)."""
    return start + timedelta(microseconds=RNG.randrange(1, int(max_seconds * 1_000_000) + 2))


def uuid7_at(moment: datetime) -> UUID:
    """Return a UUIDv7 for ``moment`` whose random bits come from the seeded stream."""
    millis = int(moment.timestamp() * 1000)
    rand_a = RNG.getrandbits(12)
    rand_b = RNG.getrandbits(62)
    return UUID(int=(millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def random_uuid() -> UUID:
    """Return a version-4 UUID drawn from the seeded stream."""
    value = RNG.getrandbits(128) & ~(0xF << 76) | (0x4 << 76)
    value = value & ~(0b11 << 62) | (0b10 << 62)
    return UUID(int=value)


def tool_use_id() -> str:
    """Return an id shaped like the agent SDK's (``toolu_01`` + 22 base62 characters)."""
    return "toolu_01" + "".join(RNG.choice(_BASE62) for _ in range(22))


def pick_tags(low: int = 1, high: int = 3) -> list[str]:
    """Return between ``low`` and ``high`` distinct tags from :data:`TAGS`, sorted."""
    return sorted(RNG.sample(TAGS, RNG.randint(low, high)))


def weighted(choices: Mapping[Any, int]) -> Any:
    """Return one key of ``choices``, drawn with the given integer weights."""
    return RNG.choices(list(choices), weights=list(choices.values()))[0]


def money(value: Decimal) -> Decimal:
    """Return ``value`` rounded to the money scale (9 decimal places)."""
    return value.quantize(Decimal(1).scaleb(-MONEY_SCALE))


def usage() -> dict[str, Any]:
    """Return plausible session counters: messages, tool calls, tokens and their cost in USD."""
    messages = RNG.randint(2, 120)
    input_tokens = RNG.randint(500, 400_000)
    output_tokens = RNG.randint(100, 60_000)
    cache_creation = RNG.randint(0, 50_000)
    cache_read = RNG.randint(0, 900_000)
    # Sonnet-like prices per million tokens: 3 in, 15 out, 3.75 cache write, 0.30 cache read.
    cost = (
        Decimal(input_tokens) * Decimal(3)
        + Decimal(output_tokens) * Decimal(15)
        + Decimal(cache_creation) * Decimal("3.75")
        + Decimal(cache_read) * Decimal("0.30")
    ) / Decimal(1_000_000)
    return {
        "total_messages": messages,
        "total_tool_calls": RNG.randint(0, messages),
        "total_cost_usd": money(cost),
        "api_input_tokens": input_tokens,
        "api_output_tokens": output_tokens,
        "api_cache_creation_tokens": cache_creation,
        "api_cache_read_tokens": cache_read,
    }


def sdk_options() -> dict[str, Any]:
    """Return plausible agent SDK options."""
    return {
        "model": RNG.choice(MODELS),
        "permission_mode": RNG.choice(PERMISSION_MODES),
        "max_turns": RNG.randint(5, 50),
        "allowed_tools": sorted(RNG.sample(TOOL_NAMES, RNG.randint(2, 6))),
    }


def sentence(words: Sequence[str], low: int = 3, high: int = 8) -> str:
    """Return a capitalised sentence of words from ``words``."""
    chosen = [RNG.choice(words) for _ in range(RNG.randint(low, high))]
    return " ".join(chosen).capitalize() + "."


class DataFactory(ModelFactory[T], Generic[T]):
    """Base of the datalayer factories: seeded stream, model defaults unless the factory says.

    ``__parents__`` maps each required foreign key to the factory of its parent, so that
    :func:`datalayer.factories.persist` can create missing parents.

    polyfactory's ``create_async`` and ``create_batch_async`` persist into ``__async_session__``
    (set by the pytest plugin for each test, or by :func:`datalayer.factories.using_session`)
    exactly as :func:`~datalayer.factories.persist` does: through the repositories, with
    parents and continued message sequence numbers. They are overridden rather than given an
    ``__async_persistence__`` handler because a handler only sees the built entity and cannot
    tell a foreign key the caller gave from a generated one.
    """

    __is_base_factory__ = True
    __use_defaults__ = True
    __random__ = RNG
    __faker__ = FAKER
    __parents__: ClassVar[dict[str, type[DataFactory[Any]]]] = {}
    __async_session__: ClassVar[AsyncSession | None] = None

    @classmethod
    async def create_async(cls, **kwargs: Any) -> T:
        """Return one entity built with ``kwargs`` and inserted in ``__async_session__`` (not committed)."""
        (entity,) = await cls.create_batch_async(1, **kwargs)
        return entity

    @classmethod
    async def create_batch_async(cls, size: int, **kwargs: Any) -> list[T]:
        """Return ``size`` entities built with ``kwargs``, inserted in ``__async_session__`` (uncommitted)."""
        # persistence imports this module: import it when first used.
        from datalayer.factories.persistence import persist

        session = cls.__async_session__
        if session is None:
            raise ConfigurationException(
                f"{cls.__name__}.create_async needs a unit of work: request the pytest plugin's "
                "datalayer_session (or datalayer_db) fixture, or wrap the calls in "
                "`with datalayer.factories.using_session(session):`"
            )
        return await persist(session, cls, size, **kwargs)

    @classmethod
    def model_class(cls) -> type[T]:
        """Return the model this factory builds (``__model__``, typed for callers)."""
        return cls.__model__

    created_at = Use(past_time)

    @classmethod
    def should_use_default_value(cls, field_meta: FieldMeta) -> bool:
        """Return True when the model default applies (the factory declares no generator)."""
        declared = field_meta.name in _declared(cls)
        return not declared and super().should_use_default_value(field_meta)

    @classmethod
    def process_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        """Return the values of one entity: generated fields, then coherent dependent ones."""
        given = frozenset(kwargs)
        values = super().process_kwargs(**kwargs)
        created: datetime = values["created_at"]
        if "id" not in given:
            values["id"] = uuid7_at(created)
        if "updated_at" in cls.__model__.model_fields and "updated_at" not in given:
            values["updated_at"] = later(created, 6 * 3600)
        values.update({k: v for k, v in cls.dependent(values).items() if k not in given})
        return values

    @classmethod
    def dependent(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Return fields computed from the others (statuses → timestamps, tokens → cost)."""
        return {}

    @classmethod
    def rows(cls, size: int, **kwargs: Any) -> list[dict[str, Any]]:
        """Return ``size`` value dicts, ready for ``Repository.create_many`` (no model objects)."""
        return [cls.process_kwargs(**kwargs) for _ in range(size)]


@cache
def _declared(factory: type[Any]) -> frozenset[str]:
    names: set[str] = set()
    for klass in factory.__mro__:
        names.update(name for name in vars(klass) if not name.startswith("_"))
        if klass is DataFactory:
            break
    return frozenset(names)
