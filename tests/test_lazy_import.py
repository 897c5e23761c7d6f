"""``import datalayer`` is lazy: no SQLAlchemy until a name is used, and every name still resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest

import datalayer
import datalayer.models
import datalayer.repositories


def test_import_datalayer_loads_neither_sqlalchemy_nor_the_models() -> None:
    probe = (
        "import sys, datalayer; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'datalayer.'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    for module in (datalayer.models, datalayer.repositories):
        assert set(module.__all__) <= set(datalayer.__all__), f"re-export the new names of {module.__name__}"
        for name in module.__all__:
            assert getattr(datalayer, name) is getattr(module, name)
    from datalayer.database import Database

    assert datalayer.Database is Database
    assert "SessionRepository" in dir(datalayer)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        getattr(datalayer, "NoSuchThing")  # noqa: B009  # a literal attribute would not type-check
