"""``python -m benchmarks.soak [--seconds N] [--quick] [--write-readme]``: the soak.

Exits 1 when any answer broke a guarantee or a session id reached the server's log.
Needs the package with its ``test`` extra (gunicorn) and dynalite from ``npm ci``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .report import printed, publish
from .runner import Settings, soak

QUICK_SECONDS = 80.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument(
        "--seconds", type=float, default=Settings.seconds, help="length of the phases together"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a short run ({QUICK_SECONDS:.0f} s), as on CI"
    )
    parser.add_argument("--users", type=int, default=Settings.users)
    parser.add_argument("--workers", type=int, default=Settings.workers)
    parser.add_argument("--threads", type=int, default=Settings.threads)
    parser.add_argument(
        "--think", type=float, default=Settings.think, help="mean pause between a device's requests"
    )
    parser.add_argument("--seed", type=int, default=Settings.seed)
    parser.add_argument("--engine", choices=["dynalite", "moto"], default=Settings.engine)
    parser.add_argument(
        "--write-readme", action="store_true", help="rewrite the soak figures on docs/security.md"
    )
    parser.add_argument("--keep-log", type=Path, help="copy the server's log here")
    args = parser.parse_args(argv)
    settings = Settings(
        seconds=QUICK_SECONDS if args.quick else args.seconds,
        users=args.users,
        workers=args.workers,
        threads=args.threads,
        think=args.think,
        seed=args.seed,
        engine=args.engine,
    )
    result = soak(settings, keep_log=args.keep_log)
    print(printed(result), flush=True)
    if args.write_readme:
        print(f"wrote {publish(result)}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
