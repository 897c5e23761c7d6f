"""mypy --strict over the package, factories, tests and migrations is part of the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_strict_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini")])
    assert status == 0, f"mypy reported problems:\n{stdout}{stderr}"
