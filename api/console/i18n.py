"""The console's two languages: message catalogues (``messages/pl.yaml``, ``messages/en.yaml``) and the choice.

Every text a page shows comes from a catalogue by key (``dashboard.title``); templates
never hold text of their own. The catalogues are nested YAML mappings, read with the
project's duplicate-refusing reader and flattened to dotted keys; both must hold the same
keys (a test checks it, and :func:`catalogue` refuses a key missing from either). A
message may name parameters in ``str.format`` braces (``{count}``).

The language is the ``tarcza_lang`` cookie if it names one of :data:`LANGUAGES`, else the
best match of ``Accept-Language``, else English.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from policies.yamlfile import parse_unique_yaml

LANGUAGES: Final = ("pl", "en")
DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_COOKIE: Final = "tarcza_lang"
MESSAGES_DIR: Final = Path(__file__).resolve().parent / "messages"


class MissingMessageError(KeyError):
    """A page asked for a message key that the catalogue does not have (a bug, never user input)."""


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping):
            out.update(_flatten(item, name))
        elif isinstance(item, str):
            out[name] = item
        else:
            raise ValueError(f"message {name} is not text")
    return out


@cache
def catalogue(language: str) -> dict[str, str]:
    """The flattened catalogue of ``language``; raises if the two catalogues' keys differ."""
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for {language!r}")
    loaded = {lang: _flatten(parse_unique_yaml((MESSAGES_DIR / f"{lang}.yaml").read_text(encoding="utf-8")) or {})
              for lang in LANGUAGES}
    keys = {lang: set(messages) for lang, messages in loaded.items()}
    only = {lang: sorted(keys[lang] - keys[other]) for lang in LANGUAGES for other in LANGUAGES if other != lang}
    if any(only.values()):
        raise ValueError("the message catalogues differ: " + "; ".join(
            f"only in {lang}: {', '.join(names[:10])}" for lang, names in only.items() if names))
    return loaded[language]


class Translator:
    """``t("key", name=value)``: the message of ``key`` in one language, parameters filled in."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.messages = catalogue(self.language)

    def __call__(self, key: str, **params: Any) -> str:
        try:
            text = self.messages[key]
        except KeyError:
            raise MissingMessageError(key) from None
        return text.format(**params) if params else text

    def has(self, key: str) -> bool:
        return key in self.messages


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header (RFC 9110 12.5.4); English by default."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-", 1)[0].lower()
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's language if it is one of ours, else the header's best match."""
    if cookie in LANGUAGES:
        return str(cookie)
    return negotiate(accept_language)
