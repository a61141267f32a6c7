"""Reading CSV files for the imports: whatever encoding, delimiter or damage they have.

A file is streamed record by record, each with the physical line it starts on (the
header is line 1), so that every problem can be reported as ``file:line: what``.
UTF-8 (with or without BOM) and UTF-16 with a BOM are recognised; any other
encoding is named with ``--encoding``. The delimiter (comma, semicolon or tab) is
taken from the header unless given. A file that is not text in its encoding, a
quote never closed and a value longer than a CSV value may hold each get one
sentence naming the line.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import UsageError, ValidationError

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _encoding_of(path: Path, requested: str | None) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    if requested:
        try:
            name = codecs.lookup(requested).name
        except LookupError:
            raise UsageError(f"--encoding {requested!r} is not an encoding Python knows") from None
        return "utf-8-sig" if name == "utf-8" else requested
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _encoding_label(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16"}.get(name, encoding)


def _count_breaks(text: str, after_cr: bool) -> int:
    """Line breaks in ``text`` as a CSV reader counts them: \\n, \\r\\n and a lone \\r."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    if after_cr and text.startswith("\n"):
        breaks -= 1
    return breaks


def _undecodable_line(path: Path, encoding: str) -> int:
    """The physical line holding the first byte that ``encoding`` cannot decode.

    A text stream decodes ahead in large chunks, so the line being parsed when it
    fails is not the line at fault: read the file again and find it.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line, after_cr = 1, False
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                good = exc.object[: exc.start]
                text = good.decode(encoding, errors="replace") if good else ""
                return line + _count_breaks(text, after_cr)
            if text:
                line += _count_breaks(text, after_cr)
                after_cr = text.endswith("\r")
    return line


# Bytes 0x80-0x9F: printable characters in Windows-1252 (€ ‚ „ … ‘ ’ “ ” – —), invisible
# control characters in latin-1; five of them mean nothing in cp1252 either.
_C1 = bytes(range(0x80, 0xA0))
_NOT_CP1252 = b"\x81\x8d\x8f\x90\x9d"
_OTHER_BYTES = bytes(b for b in range(256) if b not in _C1)


def _first_c1(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first byte 0x80-0x9F in the file, else None."""
    line, after_cr = 1, False
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            found = next((i for i, b in enumerate(chunk) if 0x80 <= b < 0xA0), None)
            text = chunk[:found].decode("latin-1")
            line += _count_breaks(text, after_cr)
            if found is not None:
                return line, chunk[found]
            after_cr = text.endswith("\r")
    return None


def _looks_cp1252(path: Path) -> bool:
    """The bytes make sense as Windows-1252 only: some are 0x80-0x9F (€, curly quotes,
    dashes: latin-1 reads them as control characters) and all of those are cp1252's."""
    seen: set[int] = set()
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            seen.update(chunk.translate(None, _OTHER_BYTES))
    return bool(seen) and not seen & set(_NOT_CP1252)


def _not_text(path: Path, encoding: str, name: str) -> ValidationError:
    line = _undecodable_line(path, encoding)
    label = _encoding_label(encoding)
    if label == "UTF-8" and _looks_cp1252(path):
        return ValidationError(
            f"{name}:{line}: the file is not valid UTF-8 text; its bytes are Windows-1252 "
            "(as Excel on Windows saves CSV, with € as byte 0x80): pass --encoding cp1252"
        )
    return ValidationError(
        f"{name}:{line}: the file is not valid {label} text; pass its encoding, "
        "e.g. --encoding cp1252 (Excel on Windows; it reads latin-1 text too)"
    )


def _check_latin1(path: Path, encoding: str, name: str) -> None:
    """latin-1 turns cp1252's € (0x80) and curly quotes into invisible control characters:
    a file holding such bytes is refused, with the encoding it most likely has."""
    if codecs.lookup(encoding).name != "iso8859-1":
        return
    found = _first_c1(path)
    if found is not None and found[1] not in _NOT_CP1252:
        line, byte = found
        meaning = bytes([byte]).decode("cp1252", errors="replace")
        raise ValidationError(
            f"{name}:{line}: byte 0x{byte:02X} is an invisible control character in latin-1 "
            f"(in Windows-1252 it is {meaning!r}); pass --encoding cp1252"
        )


_UNCLOSED = 'a quoted value that starts on this line is never closed (an unterminated " quote)'


def _csv_problem(exc: csv.Error, path: Path, encoding: str, line: int, delimiter: str) -> str:
    """What is wrong with the record that starts on physical line ``line``.

    The reader says "field larger than field limit" both for a value that is simply too
    long and for a quote never closed (everything after it became one value): reading
    the record again with a higher limit tells them apart.
    """
    text = str(exc)
    if "field larger than field limit" in text:
        too_long = _overlong_column(path, encoding, line, delimiter)
        if too_long is not None:
            column, length = too_long
            return (
                f"the value in column {column} is {length:,} characters long, more than the "
                f"{csv.field_size_limit():,} a CSV value may hold; shorten it"
            )
        return _UNCLOSED
    if "unexpected end of data" in text:
        return _UNCLOSED
    return f"the CSV is malformed: {text}"


def _overlong_column(
    path: Path, encoding: str, line: int, delimiter: str
) -> tuple[int, int] | None:
    """(column, length) of the longest value of the record starting on ``line``, read with
    eight times the limit; None when even so it does not end (a quote never closed)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(limit * 8)
    try:
        with path.open("r", encoding=encoding, newline="", errors="replace") as f:
            record = itertools.islice(f, line - 1, None)
            cells = next(csv.reader(record, delimiter=delimiter, strict=True), [])
    except (csv.Error, OSError):
        return None
    finally:
        csv.field_size_limit(limit)
    longest = max(range(len(cells)), key=lambda i: len(cells[i]), default=None)
    if longest is None or len(cells[longest]) <= limit:
        return None
    return longest + 1, len(cells[longest])


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class CsvFile:
    """A CSV file opened for streaming: its header and an iterator of (line, cells)."""

    path: Path
    header: list[str]
    delimiter: str
    encoding: str
    stream: TextIO
    reader: Any
    name: str  # how messages name the file: its path, or <stdin>
    decimal_known: bool = False  # amounts' decimal mark is only guessed from the delimiter

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Each record with the physical line it starts on (the reader counts the header too)."""
        line = self.reader.line_num + 1
        try:
            for cells in self.reader:
                yield line, cells
                line = self.reader.line_num + 1
        except UnicodeDecodeError:
            raise _not_text(self.path, self.encoding, self.name) from None
        except csv.Error as exc:
            problem = _csv_problem(exc, self.path, self.encoding, line, self.delimiter)
            raise ValidationError(f"{self.name}:{line}: {problem}") from None

    def close(self) -> None:
        self.stream.close()


def open_csv(
    path: Path, encoding: str | None = None, delimiter: str | None = None, name: str | None = None
) -> CsvFile:
    """Open ``path`` for streaming; ``name`` is how messages call it (default: the path)."""
    shown = name or str(path)
    if delimiter is not None and delimiter not in DELIMITERS:
        raise UsageError("--delimiter must be ',', ';' or a tab ('\\t')")
    if not path.is_file():
        raise ValidationError(f"{shown}: no such file")
    enc = _encoding_of(path, encoding)
    _check_latin1(path, enc, shown)
    try:
        stream = path.open("r", encoding=enc, newline="", errors="strict")
    except OSError as exc:
        raise ValidationError(f"{shown}: cannot read the file: {exc.strerror}") from None
    try:
        first = stream.readline()
        if not first.strip():
            raise ValidationError(
                f"{shown}:1: the file is empty; the first line must be the header"
            )
        if "\x00" in first:
            raise ValidationError(
                f"{shown}:1: the header holds NUL characters: the file looks like UTF-16 without "
                "a byte-order mark (try --encoding utf-16-le)"
            )
        sep = delimiter or _sniff_delimiter(first)
        # The reader sees the header too, so a quoted header cell may span lines and the
        # reader's line count is the file's.
        reader = csv.reader(itertools.chain([first], stream), delimiter=sep, strict=True)
        header = next(reader)
    except UnicodeDecodeError:
        stream.close()
        raise _not_text(path, enc, shown) from None
    except csv.Error as exc:
        stream.close()
        problem = _csv_problem(exc, path, enc, 1, sep)
        raise ValidationError(f"{shown}:1: {problem}") from None
    except BaseException:
        stream.close()
        raise
    return CsvFile(path, [h.strip() for h in header], sep, enc, stream, reader, shown)
