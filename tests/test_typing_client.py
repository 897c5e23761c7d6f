"""The typed surface as users see it: ``tests/typing_client`` checked from outside the checkout.

The client (CRUD, queries, filters, pagination, stream, eager loading, errors, a FastAPI
service) must pass ``mypy --strict`` and pyright strict with no error; every line of
``negative.py`` marked ``# expect-error`` must be reported by both, and no other line.
Checked against (a) an editable install made as the README says
(``--config-settings editable_mode=strict``: the default mode's import hook is invisible
to type checkers) and (b) the built wheel, each in a fresh virtual environment that sees
this environment's dependencies but not the checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENT = Path(__file__).resolve().parent / "typing_client"
_EXPECTED = re.compile(r"# (noqa: \w+  # )?expect-error: ")


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=900)


def _fresh_venv(where: Path) -> Path:
    """Return the python of a new venv whose only extra path is this environment's site-packages."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=where)
    # A plain path line: the dependencies are found, but this environment's own .pth files
    # (its install of datalayer) are not processed, so only the install below provides it.
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, *args: str, cwd: Path) -> None:
    done = _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", *args, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr


def _error_lines(output: str, pattern: str) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for name, line in re.findall(pattern, output, flags=re.MULTILINE):
        found.setdefault(Path(name).name, set()).add(int(line))
    return found


def _check(python: Path, workdir: Path) -> None:
    """Run both checkers on a copy of the client in ``workdir``; assert the expected errors only."""
    client = workdir / "client"
    shutil.copytree(CLIENT, client)
    expected = {
        number
        for number, text in enumerate((client / "negative.py").read_text().splitlines(), start=1)
        if _EXPECTED.search(text)
    }
    located = _run(python, "-c", "import datalayer; print(datalayer.__file__)", cwd=client)
    assert located.returncode == 0, located.stderr
    assert not located.stdout.strip().startswith(str(client)), located.stdout

    (client / "mypy.ini").write_text("[mypy]\nstrict = True\nwarn_unreachable = True\n")
    mypy = _run(
        sys.executable, "-m", "mypy", "--python-executable", python, "--cache-dir", ROOT / ".mypy_cache",
        "--no-error-summary", "client.py", "service.py", "negative.py", cwd=client,
    )  # fmt: skip
    (client / "pyrightconfig.json").write_text('{"typeCheckingMode": "strict", "pythonVersion": "3.11"}')
    pyright = _run(
        sys.executable,
        "-m",
        "pyright",
        "--pythonpath",
        python,
        "client.py",
        "service.py",
        "negative.py",
        cwd=client,
    )
    for name, output, pattern in (
        ("mypy", mypy.stdout + mypy.stderr, r"^([\w./-]+\.py):(\d+): error:"),
        ("pyright", pyright.stdout + pyright.stderr, r"^\s*(/[\w./-]+\.py):(\d+):\d+ - error:"),
    ):
        lines = _error_lines(output, pattern)
        assert lines.pop("negative.py", set()) == expected, f"{name} on negative.py:\n{output}"
        assert not lines, f"{name} reported errors in the client:\n{output}"
    assert "type: ignore" not in (client / "client.py").read_text() + (client / "service.py").read_text()


@pytest.mark.slow
def test_client_against_editable_install(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, "-e", str(ROOT), "--config-settings", "editable_mode=strict", cwd=tmp_path)
    _check(python, tmp_path)


@pytest.mark.slow
def test_client_against_wheel(tmp_path: Path) -> None:
    built = _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", ROOT, cwd=tmp_path
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("sqlmodel_datalayer-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    _pip(python, str(wheel), cwd=tmp_path)
    _check(python, tmp_path)
