"""The package's shape, as ARCHITECTURE.md describes it: no import circle (lazy imports
included), and nothing below the interface imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_circle_and_nothing_below_the_interface_imports_it() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "import_graph.py"),
            str(ROOT / "src" / "dynamodb_session_flask"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert "circle:" not in result.stdout
    assert result.stdout.splitlines()[-1] == "imports interface: __init__"
