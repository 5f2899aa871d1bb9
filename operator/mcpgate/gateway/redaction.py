"""Removing credential values from text, in every form an API might echo them.

An API that echoes a request (an error page quoting a header, a JSON error quoting a
query) may hand back a credential the gateway sent, encoded the way its framework
encodes text: percent-encoded (`%2F`, `%2f`, `+` for a space), JSON-escaped (`\\/`,
`\\u0026`), HTML-escaped (`&amp;`, `&#38;`, `&#x26;`). Listing every encoding of a value
would be exponential (each character may be written its own way), so each secret
becomes one regular expression in which every character stands for any of its forms,
and all secrets one alternation, longest first. Letters and digits, which no common
encoder rewrites, stay literal: a token of them costs a plain search.

`excerpt` redacts before it cuts: a match that the cut would split is found whole (the
window reaches past the cut by the longest form a secret can take), so a caller who
chooses where the cut falls (by the length of an echoed argument) cannot keep a piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

from mcpgate.gateway.config import MIN_CREDENTIAL_LENGTH

__all__ = ["MARK", "Redaction", "redaction_of"]

MARK: Final = "[REDACTED]"

_NAMED_ENTITIES: Final = {
    "&": ("amp",),
    "<": ("lt",),
    ">": ("gt",),
    '"': ("quot",),
    "'": ("apos", "#39"),
}
_JSON_SHORT: Final = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
_JSON_SHORT.update({"\n": "\\n", "\r": "\\r", "\t": "\\t"})
# The longest form one character takes: `&#x0000026;` is allowed (leading zeros), so a
# bound on zeros keeps the window finite; 16 covers every encoder seen in practice.
_MAX_FORM_CHARS: Final = 16


def _hex(value: int, digits: int) -> str:
    """`value` as hex digits matching either case: 0x2f -> `2[fF]`."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{digits}X}")


def _char_pattern(char: str) -> str:
    if char.isascii() and char.isalnum():
        return char
    forms = ["".join("%" + _hex(byte, 2) for byte in char.encode())]  # percent
    if char == " ":
        forms.append(r"\+")  # application/x-www-form-urlencoded
    code = ord(char)
    if code > 0xFFFF:  # JSON writes it as a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(rf"\\u{_hex(high, 4)}\\u{_hex(low, 4)}")
    else:
        forms.append(rf"\\u{_hex(code, 4)}")
    if char in _JSON_SHORT:
        forms.append(re.escape(_JSON_SHORT[char]))
    forms.append(rf"&#0{{0,4}}{code};")  # HTML decimal
    forms.append(rf"&#[xX]0{{0,4}}{_hex(code, 1)};")  # HTML hexadecimal
    forms.extend(f"&{name};" for name in _NAMED_ENTITIES.get(char, ()))
    # The character as it is goes last: at a value's end, `&` alone would match and
    # leave the `amp;` of `&amp;` behind.
    forms.append(re.escape(char))
    return "(?:" + "|".join(forms) + ")"


def _secret_pattern(secret: str) -> str:
    return "".join(_char_pattern(char) for char in secret)


class Redaction:
    """The credential values of one moment, ready to be removed from any text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted(
            {s for s in secrets if len(s) >= MIN_CREDENTIAL_LENGTH}, key=len, reverse=True
        )
        self._longest = max((len(v) for v in values), default=0) * _MAX_FORM_CHARS
        self._pattern = re.compile("|".join(_secret_pattern(v) for v in values)) if values else None

    def __call__(self, text: str) -> str:
        """`text` with every form of every secret replaced by MARK."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MARK, text)

    def excerpt(self, text: str, limit: int) -> str:
        """The first `limit` characters of `text` once redacted, found without redacting
        the whole of a long text: each search is bounded to what can still reach the cut."""
        if self._pattern is None:
            return text[:limit]
        parts: list[str] = []
        size = 0
        position = 0
        while size < limit and position < len(text):
            room = limit - size
            found = self._pattern.search(text, position, position + room + self._longest)
            if found is None or found.start() >= position + room:
                parts.append(text[position : position + room])
                break
            parts.append(text[position : found.start()])
            parts.append(MARK)
            size += found.start() - position + len(MARK)
            position = found.end()
        # A MARK that straddles the cut is kept whole: a few characters over, never a
        # piece of a marker that reads like the start of a value.
        return "".join(parts)


@lru_cache(maxsize=16)
def redaction_of(secrets: tuple[str, ...]) -> Redaction:
    """One compiled Redaction per set of values: log lines ask for it many times."""
    return Redaction(secrets)
