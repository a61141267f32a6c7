"""Amounts as exports write them: 1.250,50 or 1,250.00, € 149,00, $890.00, 149.00 USD.

A value is read with one decimal mark (``.`` or ``,``); the other mark (and spaces or
an apostrophe) may only group the whole part in threes: ``1,250,000.00`` or
``1.250.000,00``. A currency sign (€ $ £) or a three-letter code (EUR, USD) before or
after the number is dropped. When the decimal mark was not given but taken from the
file's delimiter, a value that the other mark reads as a different number (``1,250``:
1250 or 1.25; ``1.250``: 1.25 or 1250) is ambiguous and rejected, never guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal

MARKS = (".", ",")
_CURRENCY = re.compile(r"^(?:[€$£]|[A-Z]{3})\s*(?P<rest>.*)$|^(?P<head>.*?)\s*(?:[€$£]|[A-Z]{3})$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def _strip_currency(value: str) -> str:
    match = _CURRENCY.match(value)
    if match is None:
        return value
    rest = match.group("rest") if match.group("rest") is not None else match.group("head")
    return rest.strip()


def _read(value: str, decimal: str) -> Decimal | None:
    """The number ``value`` writes with ``decimal`` as its decimal mark, else None."""
    group = "," if decimal == "." else "."
    text = _SPACES.sub(" ", value)
    sign = ""
    if text[:1] in "+-":
        sign, text = text[:1], text[1:].lstrip()
    whole, mark, fraction = text.partition(decimal)
    if mark and not (fraction.isascii() and fraction.isdigit()):
        return None
    if not whole and mark:
        whole = "0"
    groups = re.split(rf"[{re.escape(group)} ']", whole)
    grouped = re.fullmatch(r"[1-9]\d{0,2}", groups[0]) and all(
        re.fullmatch(r"\d{3}", g) for g in groups[1:]
    )
    if len(groups) > 1 and not grouped:
        return None
    digits = "".join(groups)
    if not (digits.isascii() and digits.isdigit()):
        return None
    return Decimal(f"{sign}{digits}.{fraction or '0'}")


def _plain(number: Decimal) -> str:
    return f"{number.normalize():f}"


# Digits with a decimal point or none (149, 198.33): most of a file's amounts. Such a
# value reads the same in any way below, unless it may be grouped (1.250: 1.25 or 1250).
_PLAIN = re.compile(r"(\d+)(?:\.(\d+))?")


def parse_amount(raw: str, decimal: str, *, given: bool = True) -> Decimal:
    """``raw`` as a number; ValueError says why not (the caller names the field)."""
    plain = _PLAIN.fullmatch(raw.strip()) if decimal == "." else None
    if plain is not None and (given or len(plain.group(2) or "") != 3):
        return Decimal(f"{plain.group(1)}.{plain.group(2) or '0'}")
    value = _strip_currency(raw.strip())
    number = _read(value, decimal) if value else None
    name = "point" if decimal == "." else "comma"
    if number is None:
        other = "," if decimal == "." else "."
        example = "1,250.50" if decimal == "." else "1.250,50"
        hint = (
            f"; pass --decimal {other} if the file writes amounts that way"
            if value and _read(value, other) is not None
            else f" (write e.g. {example})"
        )
        raise ValueError(f"{raw.strip()!r} is not an amount with a decimal {name}{hint}")
    if not given:
        other = "," if decimal == "." else "."
        alternative = _read(value, other)
        if alternative is not None and alternative != number:
            raise ValueError(
                f"{raw.strip()!r} is ambiguous: {_plain(number)} with a decimal {name}, or "
                f"{_plain(alternative)} with a decimal {'comma' if other == ',' else 'point'}; "
                "pass --decimal . or --decimal ,"
            )
    return number
