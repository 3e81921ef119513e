"""Hypothesis strategies: personal data in disguise, as someone slipping it past a pattern check would write it.

A PESEL, NIP, phone number, e-mail address or IBAN, then separators inserted between its digits
(spaces of several widths, dashes, dots, slashes, brackets), digits written in other scripts or
full width, the last digits replaced by ``x`` placeholders, letters swapped for Cyrillic or Greek
look-alikes, a full-width or small commercial at. Every value drawn is personal data a reader
would recognise; the log must refuse all of them.
"""

from __future__ import annotations

from hypothesis import strategies as st

SEPARATORS = ("", "", "", " ", "  ", "-", ".", "/", " - ", "\u00a0", "\u2009", "\u3000", "\u2010", "\u2013",
              "\u2014", "\u2212")
DIGIT_SCRIPTS = (0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6)  # ASCII, full width, Arabic-Indic (two), Devanagari, Bengali
LOOK_ALIKES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445",
               "y": "\u0443", "i": "\u0456", "P": "\u0420", "L": "\u13de", "n": "\u0578", "l": "\u04cf"}


def _digits(count: int, first: str = "0123456789") -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(first), st.text("0123456789", min_size=count - 1, max_size=count - 1)).map(
        "".join)


@st.composite
def _spaced(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with a separator drawn for each gap, and maybe its last one or two digits as ``x``."""
    hidden = draw(st.sampled_from((0, 0, 1, 2)))
    shown = digits[:len(digits) - hidden] + "x" * hidden if hidden else digits
    script = draw(st.sampled_from(DIGIT_SCRIPTS))
    out = []
    for i, ch in enumerate(shown):
        if i:
            out.append(draw(st.sampled_from(SEPARATORS)))
        out.append(chr(script + int(ch)) if ch.isdigit() else ch)
    if draw(st.booleans()) and not hidden:
        out.append("x")  # a trailing placeholder, as in 601-555-777x
    return "".join(out)


def _swap_letters(draw: st.DrawFn, text: str) -> str:
    style = draw(st.sampled_from(("plain", "full_width", "look_alike")))
    if style == "full_width":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if style == "look_alike":
        return "".join(LOOK_ALIKES.get(c, c) if draw(st.booleans()) else c for c in text)
    return text


@st.composite
def _email(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[a-z]{2,8}\.[a-z]{2,10}", fullmatch=True))
    domain = draw(st.from_regex(r"[a-z]{3,10}\.(pl|com|eu)", fullmatch=True))
    at = draw(st.sampled_from(("@", "\uff20", "\ufe6b", " @ ")))
    return _swap_letters(draw, local) + at + _swap_letters(draw, domain)


@st.composite
def _iban(draw: st.DrawFn) -> str:
    country = _swap_letters(draw, "PL")
    return country + draw(_digits(26).flatmap(_spaced))


def disguised_pii() -> st.SearchStrategy[str]:
    """One PESEL, NIP, phone, e-mail or IBAN in disguise."""
    pesel = _digits(11).flatmap(_spaced)
    nip = _digits(10, "123456789").flatmap(_spaced)
    phone = _digits(9, "45678").flatmap(_spaced)
    international = _digits(9, "4578").flatmap(_spaced).map(lambda p: "+48 " + p)
    return st.one_of(pesel, nip, phone, international, _email(), _iban())
