"""The package's public names (imported on first use) and its distribution metadata."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import datalayer
import datalayer.errors
import datalayer.models
import datalayer.repositories


def test_top_level_names_are_the_submodules_public_names() -> None:
    exceptions = {name for name in datalayer.errors.__all__ if name.endswith("Error")}
    expected = {"DEFAULT_DATABASE_URL", "Database", *exceptions}
    expected |= {*datalayer.models.__all__, *datalayer.repositories.__all__}
    assert expected <= set(datalayer.__all__)
    assert len(datalayer.__all__) == len(set(datalayer.__all__))
    for name in datalayer.__all__:
        assert getattr(datalayer, name) is not None, name
    assert datalayer.UserRepository is datalayer.repositories.UserRepository
    assert callable(datalayer.instrument) and callable(datalayer.uninstrument)
    assert set(datalayer.__all__) <= set(dir(datalayer))
    # every name importable on first use is exported (star import, type checkers), and only those
    assert set(datalayer.__all__) == set(vars(datalayer)["_LAZY"])


def test_star_import_and_attribute_errors() -> None:
    star = "from datalayer import *; print(Database.__module__, UserRepository.__module__)"
    result = subprocess.run([sys.executable, "-c", star], capture_output=True, text=True)
    assert result.stdout.split() == ["datalayer.database", "datalayer.repositories.user"], result.stderr
    result = subprocess.run(
        [sys.executable, "-c", "import datalayer; datalayer.NoSuchThing"], capture_output=True, text=True
    )
    assert "AttributeError: module 'datalayer' has no attribute 'NoSuchThing'" in result.stderr


def test_distribution_metadata() -> None:
    meta = importlib.metadata.metadata(datalayer.DISTRIBUTION)
    assert meta["Name"] == "sqlmodel-datalayer"
    assert meta["Version"] == datalayer.__version__
    assert meta["License-Expression"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
