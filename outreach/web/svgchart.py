"""A small horizontal stacked-bar chart as inline SVG: numbers in, markup out, no JavaScript."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = {
    "interested": "#2e7d32",
    "not_interested": "#9e9e9e",
    "no_answer": "#f9a825",
    "wrong_number": "#6d4c41",
    "do_not_contact": "#c62828",
    "open": "#90caf9",
    "claimed": "#1565c0",
    "done": "#2e7d32",
    "expired": "#ef6c00",
    "cancelled": "#757575",
}


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    keys: Sequence[str],
    labels: Mapping[str, str],
    *,
    title: str,
    width: int = 560,
    bar: int = 18,
) -> str:
    """One bar per row (e.g. per agent), segments per key (e.g. per outcome), with a legend."""
    label_w, gap, top = 120, 8, 28
    plot_w = width - label_w - 40
    biggest = max([sum(values.get(k, 0) for k in keys) for _, values in rows] + [1])
    height = top + len(rows) * (bar + gap) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, values) in enumerate(rows):
        y = top + i * (bar + gap)
        parts.append(f'<text x="0" y="{y + bar - 5}" font-size="12">{escape(name)}</text>')
        x = float(label_w)
        total = 0
        for key in keys:
            n = values.get(key, 0)
            if n <= 0:
                continue
            w = plot_w * n / biggest
            colour = PALETTE.get(key, "#607d8b")
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}">'
                f"<title>{escape(labels.get(key, key))}: {n}</title></rect>"
            )
            x += w
            total += n
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 5}" font-size="12">{total}</text>')
    y = top + len(rows) * (bar + gap) + 8
    x = 0
    for key in keys:
        text = labels.get(key, key)
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE.get(key, "#607d8b")}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(text)}</text>')
        x += 22 + 7 * len(text)
    parts.append("</svg>")
    return "".join(parts)
