"""Charts drawn on the server as SVG: no chart library, no script, no inline style.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (its text
alternative, read by screen readers), and the page shows the same numbers in a table
under it. Colours come from classes (``series-0`` ...) styled in ``static/console.css``,
with the value written on or beside every bar, so nothing depends on colour alone.
Pure functions: data in, markup out (every text escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 640  # of a column chart
BAR_WIDTH: Final = 400  # of a bar chart, which sits in a narrower panel
BAR_HEIGHT: Final = 22
GAP: Final = 8
LABEL_WIDTH: Final = 170
VALUE_WIDTH: Final = 40
SERIES_CLASSES: Final = 6


@dataclass(frozen=True)
class Chart:
    """A chart's markup and the table that says the same in text."""

    chart_id: str
    svg: Markup
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: bool


def _svg(chart_id: str, title: str, desc: str, height: int, body: str, width: int = WIDTH) -> Markup:
    return Markup(  # noqa: S704 - every text and attribute put in is escaped here or is a number
        f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>{body}</svg>')


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, int]], *, label_header: str,
              value_header: str, empty_text: str) -> Chart:
    """Horizontal bars, one per ``(label, value)``, longest first as given."""
    rows = tuple((label, str(value)) for label, value in items)
    desc = "; ".join(f"{label}: {value}" for label, value in items) or empty_text
    if not items:
        body = f'<text class="chart-empty" x="8" y="24">{escape(empty_text)}</text>'
        svg = _svg(chart_id, title, desc, 40, body, BAR_WIDTH)
        return Chart(chart_id, svg, (label_header, value_header), rows, True)
    top = max(value for _, value in items) or 1
    span = BAR_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts: list[str] = []
    for row, (label, value) in enumerate(items):
        y = row * (BAR_HEIGHT + GAP)
        width = max(1, round(span * value / top)) if value else 0
        parts.append(
            f'<g class="bar"><text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">'
            f'{escape(_short(label))}</text>'
            f'<rect class="series-{row % SERIES_CLASSES}" x="{LABEL_WIDTH}" y="{y}" width="{width}" '
            f'height="{BAR_HEIGHT}"/>'
            f'<text class="chart-value" x="{LABEL_WIDTH + width + 6}" y="{y + 16}">{value}</text></g>')
    height = len(items) * (BAR_HEIGHT + GAP)
    svg = _svg(chart_id, title, desc, height, "".join(parts), BAR_WIDTH)
    return Chart(chart_id, svg, (label_header, value_header), rows, False)


def stacked_columns(chart_id: str, title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[int]]],
                    *, category_header: str, total_header: str, empty_text: str) -> Chart:
    """One column per category (a day), stacked by series (a channel), with a legend; totals above."""
    headers = (category_header, *(name for name, _ in series), total_header)
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    rows = tuple((category, *(str(values[i]) for _, values in series), str(totals[i]))
                 for i, category in enumerate(categories))
    described = [f"{category}: {total}" for category, total in zip(categories, totals, strict=True) if total]
    desc = "; ".join(described) or empty_text
    if not any(totals):
        body = f'<text class="chart-empty" x="8" y="24">{escape(empty_text)}</text>'
        return Chart(chart_id, _svg(chart_id, title, desc, 40, body), headers, rows, True)
    legend_height = 24
    plot_top, plot_height, axis = legend_height + 18, 160, 24
    height = plot_top + plot_height + axis
    slot = (WIDTH - 16) / max(1, len(categories))
    column = max(4.0, slot * 0.7)
    top = max(totals) or 1
    parts: list[str] = []
    x = 8
    for number, (name, _) in enumerate(series):
        parts.append(f'<rect class="series-{number % SERIES_CLASSES}" x="{x}" y="4" width="12" height="12"/>'
                     f'<text class="chart-legend" x="{x + 16}" y="15">{escape(name)}</text>')
        x += 16 + 8 * len(name) + 18
    for i, category in enumerate(categories):
        left = 8 + i * slot + (slot - column) / 2
        bottom = float(plot_top + plot_height)
        for number, (_, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = plot_height * value / top
            bottom -= h
            parts.append(f'<rect class="series-{number % SERIES_CLASSES}" x="{left:.1f}" y="{bottom:.1f}" '
                         f'width="{column:.1f}" height="{h:.1f}"/>')
        if totals[i]:
            parts.append(f'<text class="chart-value" x="{left + column / 2:.1f}" y="{bottom - 4:.1f}" '
                         f'text-anchor="middle">{totals[i]}</text>')
        if len(categories) <= 16 or i % 2 == 0:
            parts.append(f'<text class="chart-axis" x="{left + column / 2:.1f}" y="{plot_top + plot_height + 16}" '
                         f'text-anchor="middle">{escape(category[-5:])}</text>')
    return Chart(chart_id, _svg(chart_id, title, desc, height, "".join(parts)), headers, rows, False)


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
