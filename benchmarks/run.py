"""Entry point: ``python benchmarks/run.py [--rounds N] [--users N] [--quick] [--check]``.

Needs the package and the ``bench`` extra installed, and dynalite from ``npm ci``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    # Run as a script, only this file's folder is importable; the suite lives in the
    # ``benchmarks`` package and starts its engine with the test suite's helpers.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.suite import main as run_suite

    return run_suite(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
