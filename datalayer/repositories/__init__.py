"""Repositories: ``Repository[ModelT]`` and one thin subclass per table."""

from datalayer.repositories.base import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Filter,
    OrderBy,
    Repository,
    SoftDeleteRepository,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Filter",
    "OrderBy",
    "Repository",
    "SoftDeleteRepository",
]
