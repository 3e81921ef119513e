"""``report.html`` of a subject export: the ``data.json`` value for a person to read, in Polish and English.

Plain HTML with embedded CSS, no script, no external resource, every value escaped
(``gdpr/templates/report.html``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["render_report"]


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _when(text: str | None) -> str:
    if text is None:
        return "—"
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(minor: int, currency: str, lang: str) -> str:
    major, cents = divmod(abs(minor), 100)
    sign = "-" if minor < 0 else ""
    if lang == "pl":
        grouped = f"{major:,}".replace(",", "\u00a0")
        return f"{sign}{grouped},{cents:02d} {currency}"
    return f"{sign}{major:,}.{cents:02d} {currency}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    minutes, seconds = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def render_report(data: Mapping[str, Any]) -> str:
    """``report.html`` for a ``data.json`` value: Polish and English, escaped, no script."""
    return _templates().get_template("report.html").render(
        data=data, languages=("pl", "en"), when=_when, money=_money, duration=_duration)
