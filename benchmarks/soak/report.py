"""The soak's figures: the table it prints, and the block in the Guarantees of the
documentation's Security page (docs/security.md, between its markers), rewritten from one
run with ``--write-readme`` as ``make bench`` rewrites the Performance page."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from .model import KINDS, count_by_kind
from .runner import PhaseFigures, Result

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
#: The page whose soak block ``--write-readme`` rewrites.
PAGE = REPO_ROOT / "docs" / "security.md"
START = (
    "<!-- soak:start (written by `make soak SOAK_FLAGS=--write-readme`: "
    "edit benchmarks/soak/report.py) -->"
)
END = "<!-- soak:end -->"
#: Violations shown in detail per kind, in the printed report.
EXAMPLES = 5


def _recovery(figures: PhaseFigures) -> str:
    return "-" if figures.recovery is None else f"{figures.recovery:.1f} s"


def _violations(figures: PhaseFigures) -> str:
    if not figures.violations:
        return "0"
    kinds = "; ".join(f"{kind}: {n}" for kind, n in sorted(figures.violation_kinds.items()))
    return f"**{figures.violations}** ({kinds})"


def table(result: Result) -> list[str]:
    lines = [
        "| phase | fault | s | requests | 200 | 503 | other | faults injected "
        "| violations | recovery | worker RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for figures in result.phases:
        lines.append(
            "| "
            + " | ".join(
                [
                    figures.name,
                    figures.fault,
                    f"{figures.seconds:.0f}",
                    f"{figures.requests:,}",
                    f"{figures.ok:,}",
                    f"{figures.unavailable:,}",
                    f"{figures.other:,}",
                    f"{figures.injected:,}",
                    _violations(figures),
                    _recovery(figures),
                    f"{figures.worker_rss_mib:.0f} MiB",
                ]
            )
            + " |"
        )
    return lines


def totals(result: Result) -> str:
    requests = sum(f.requests for f in result.phases)
    seconds = sum(f.seconds for f in result.phases)
    ok = sum(f.ok for f in result.phases)
    lost = sum(f.lost_applied for f in result.phases)
    actions = result.actions
    return (
        f"{requests:,} requests in {seconds:.0f} s ({requests / max(seconds, 1):.0f}/s): "
        f"{actions.get('read', 0):,} reads, {actions.get('set', 0):,} writes, "
        f"{actions.get('login', 0):,} logins, {actions.get('logout', 0):,} logouts, "
        f"{actions.get('end-others', 0):,} ends of other sessions, "
        f"{actions.get('replay', 0):,} replays of dead ids; {ok:,} answered 200; "
        f"{lost:,} writes applied by the engine whose answer was lost; "
        f"{len(result.violations):,} violations; {result.leaked_ids} session ids in "
        f"{result.log_lines:,} lines of server log"
    )


def printed(result: Result) -> str:
    settings = result.settings
    lines = [
        "",
        f"Soak on {settings.engine}: gunicorn {settings.workers} workers x "
        f"{settings.threads} threads, {settings.users} users on {result.devices} devices, "
        f"recovery window {result.recovery_window:.0f} s",
        "",
        *table(result),
        "",
        totals(result) + ".",
    ]
    if result.tracebacks:
        lines.append(f"Tracebacks in the server log: {result.tracebacks}.")
    if result.violations:
        lines += ["", "Violations by kind, with examples:"]
        for kind, count in sorted(count_by_kind(result.violations).items()):
            lines.append(f"  {kind}: {count} ({KINDS[kind]})")
            shown = [v for v in result.violations if v.kind == kind][:EXAMPLES]
            for violation in shown:
                lines.append(f"    {violation.device} {violation.action}: {violation.detail}")
    if result.leaked_ids:
        lines.append(f"FAILED: {result.leaked_ids} raw session ids appear in the server log.")
    lines.append("FAILED" if result.failed else "OK: no violations")
    return "\n".join(lines)


def _paragraph(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text, width=90, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    )


def section(result: Result) -> str:
    """The soak block's body, between its markers."""
    settings = result.settings
    devices_per_user = result.devices / max(1, settings.users)
    lines = [
        _paragraph(
            f"Measured with `make soak` (`benchmarks/soak/`) on {result.date}: gunicorn with "
            f"{settings.workers} workers × {settings.threads} threads serves a small app "
            "(login with `regenerate()`, one key changed, a read, logout, end other sessions) "
            f"to {settings.users} users with {devices_per_user:.1f} devices each on "
            f"{settings.engine} through the fault proxy, in phases of faults. Every answer is "
            "checked against a model of the acknowledged writes (`benchmarks/soak/model.py`): "
            "no 500; an acknowledged write is visible on the device's next read unless a later "
            "write, logout or end of the session superseded it; a session logged out, rotated "
            "away or ended never loads again, replayed ids included; a 503 comes only during a "
            f"fault or the {result.recovery_window:.0f} s after it; no session id appears in "
            "the server's log. Recovery is how long after the fault ended the phase's last "
            "failed request finished (0.0 s: none finished later); RSS is the largest "
            "worker's at the end of the phase."
        ),
        "",
        *table(result),
        "",
        _paragraph(totals(result) + "."),
    ]
    if result.violations:
        lines += ["", "Violations:", ""]
        for kind, n in sorted(count_by_kind(result.violations).items()):
            lines.append(_paragraph(f"- {kind} ({n:,}): {KINDS[kind]}.", indent="  "))
    else:
        lines += ["", "No violations."]
    return "\n".join(lines)


def rewrite_readme(page: str, body: str) -> str:
    """``page`` with the text between the soak markers replaced by ``body``.

    :raises ValueError: when the markers are missing.
    """
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(page):
        raise ValueError(f"no {START!r} ... {END!r} markers")
    return pattern.sub(lambda _: f"{START}\n{body}\n{END}", page, count=1)


def publish(result: Result) -> Path:
    """Rewrite the soak block of the Security page; return the page."""
    PAGE.write_text(rewrite_readme(PAGE.read_text("utf-8"), section(result)), "utf-8")
    return PAGE
