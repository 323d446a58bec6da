"""The cost of each implementation at each session size, as a standalone SVG bar chart.

Written with plain string building so the benchmark needs no plotting library; the result
renders on GitHub and in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

#: Bar colours by implementation, readable by colour-blind viewers (Okabe-Ito palette).
COLOURS = {
    "floor": "#999999",
    "ours": "#0072B2",
    "ours_uncompressed": "#56B4E9",
    "flask_session": "#E69F00",
}
WIDTH = 760
LABEL_WIDTH = 175
VALUE_WIDTH = 60
BAR_HEIGHT = 16
BAR_GAP = 4
GROUP_GAP = 18
TOP = 64
FONT = "font-family='-apple-system,Segoe UI,Helvetica,Arial,sans-serif'"


@dataclass(frozen=True)
class Bar:
    implementation: str
    label: str
    dollars: float
    #: The value as printed beside the bar.
    text: str


@dataclass(frozen=True)
class Group:
    label: str
    bars: Sequence[Bar]


def cost_chart(title: str, subtitle: str, groups: Sequence[Group]) -> str:
    """Horizontal bars, one group per session size, one bar per implementation, each
    labelled with its dollars per million requests."""
    most = max((bar.dollars for group in groups for bar in group.bars), default=1.0) or 1.0
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20
    parts: list[str] = []
    y = TOP
    for group in groups:
        parts.append(
            f"<text x='10' y='{y + BAR_HEIGHT - 3}' font-size='13' font-weight='bold'>"
            f"{escape(group.label)}</text>"
        )
        for bar in group.bars:
            length = max(1.0, bar.dollars / most * span)
            colour = COLOURS.get(bar.implementation, "#666666")
            parts.append(
                f"<rect x='{LABEL_WIDTH}' y='{y}' width='{length:.1f}' height='{BAR_HEIGHT}' "
                f"fill='{colour}'><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>"
            )
            parts.append(
                f"<text x='{LABEL_WIDTH + length + 6:.1f}' y='{y + BAR_HEIGHT - 3}' "
                f"font-size='12'>{escape(bar.text)}</text>"
            )
            y += BAR_HEIGHT + BAR_GAP
        y += GROUP_GAP
    legend_y = y + 4
    seen: dict[str, str] = {}
    for group in groups:
        for bar in group.bars:
            seen.setdefault(bar.implementation, bar.label)
    x = 10
    for implementation, label in seen.items():
        # About 7 px per character at 12 px: wrap before an entry would overflow.
        entry_width = 17 + 7 * len(label) + 18
        if x > 10 and x + entry_width > WIDTH:
            x, legend_y = 10, legend_y + 20
        colour = COLOURS.get(implementation, "#666666")
        parts.append(
            f"<rect x='{x}' y='{legend_y}' width='12' height='12' fill='{colour}'/>"
            f"<text x='{x + 17}' y='{legend_y + 11}' font-size='12'>{escape(label)}</text>"
        )
        x += entry_width
    height = legend_y + 30
    header = (
        f"<text x='10' y='24' font-size='16' font-weight='bold'>{escape(title)}</text>"
        f"<text x='10' y='44' font-size='12' fill='#444444'>{escape(subtitle)}</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' {FONT} role='img'>\n"
        f"<title>{escape(title)}</title>\n"
        f"<rect width='100%' height='100%' fill='#ffffff'/>\n"
        f"{header}\n" + "\n".join(parts) + "\n</svg>\n"
    )
