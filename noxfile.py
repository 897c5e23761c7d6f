"""nox sessions: ``tests`` (both backends, mypy included, on every supported Python), ``typecheck``,
``lint``, ``bench``, ``docs``. ``nox -s tests-3.13`` runs one Python only."""

import os
from pathlib import Path

import nox

#: The Python versions the package supports (pyproject.toml's classifiers say the same).
PYTHONS = ["3.11", "3.12", "3.13"]

# pyenv installs interpreters it does not put on PATH unless selected (`pyenv global`); its
# shims then answer "command not found". Put each installed version's own bin first.
for version in PYTHONS:
    for bin_dir in sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin"))[-1:]:
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the whole test suite on SQLite and a throwaway PostgreSQL."""
    session.install("-e", ".[dev]", "--config-settings", "editable_mode=strict")
    session.run("pytest", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict (mypy.ini) and pyright strict ([tool.pyright])."""
    session.install("-e", ".[dev]", "--config-settings", "editable_mode=strict")
    session.run("mypy")
    session.run("pyright")


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff."""
    session.install("ruff>=0.9")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the side-by-side benchmark on SQLite and PostgreSQL."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the API reference (mkdocs + mkdocstrings) with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs)
