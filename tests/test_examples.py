"""The README's usage example runs and prints what the README says, twice in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_usage_example_runs_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATALAYER_DATABASE_URL"}
    outputs = [
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "usage.py")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.splitlines()
        for _ in range(2)
    ]
    assert outputs[0] == ["1 0.012500000", "1", "refused: the email is taken"]
    assert outputs[1] == ["1 0.012500000", "2", "refused: the email is taken"]
    assert (tmp_path / "datalayer.db").exists()
