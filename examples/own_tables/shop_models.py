"""A service's own tables next to datalayer's: an invoice per datalayer user (docs/own-tables.md).

The service keeps its tables in its own SQLModel registry and ``MetaData``, so its Alembic
autogenerate sees only them. The foreign key names datalayer's column object
(``col(UserModel.id)``), which resolves across the two metadata collections.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col

from datalayer.models import UserModel

metadata = sa.MetaData(
    # Named constraints, so later migrations (batch mode on SQLite) can address them.
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class ShopModel(SQLModel, registry=registry(metadata=metadata)):
    """Base class of the service's tables (its own registry and metadata)."""


class InvoiceModel(ShopModel, table=True):
    """An invoice of a datalayer user; deleted with the user."""

    # ClassVar[Any]: SQLModel types __tablename__ as a declared_attr, which pyright enforces.
    __tablename__: ClassVar[Any] = "shop_invoices"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    user_id: UUID = Field(sa_column_args=[sa.ForeignKey(col(UserModel.id), ondelete="CASCADE")], index=True)
    title: str = Field(max_length=200)
    total_cents: int = Field(ge=0)
