"""CSV in and out: the customer import (all or nothing, streamed) and exports.

The import reads the file once, row by row, inside one write transaction.
Every row is checked; if any is bad the transaction is rolled back and every
bad row is reported with its line in the file (the header is line 1), unless
``skip_bad`` names a file to receive the rejected rows. Memory stays flat: the
keys already seen in the file live in a temporary SQLite table, not in Python.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import engine
from .customers import FIELDS, Cleaner, changes_for, split_name
from .errors import UsageError, ValidationError
from .playbooks import Library
from .store import Row, Store

MAX_LISTED = 20
REASON_COLUMN = "funnelctl_reason"
PLACEMENT = ("funnel", "stage", "entered_on")
IMPORT_FIELDS = (*FIELDS, "first_name", "last_name", *PLACEMENT)
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True)
class ImportOptions:
    key: str = "email"
    mapping: Mapping[str, str] = field(default_factory=dict)
    funnel: str | None = None
    stage: str | None = None
    dry_run: bool = False
    run_actions: bool = True
    encoding: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    skip_bad: Path | None = None


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    enrolled: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "enrolled": self.enrolled,
        }

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(f"line {line}: {reason}")


class RowError(Exception):
    """One row is bad; the message says why."""


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise UsageError(f"--map {pair!r} must be written as 'CSV column=field'")
        mapping[source.strip()] = target.strip()
    return mapping


# -- reading the file ---------------------------------------------------------------------


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

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        line = 2
        try:
            for cells in self.reader:
                yield line, cells
                line = self.reader.line_num + 2
        except UnicodeDecodeError:
            hint = " (if it was saved by Excel, try --encoding latin-1 or cp1252)"
            raise ValidationError(
                f"{self.path}:{line}: the file is not valid {self.encoding} text"
                + (hint if self.encoding.startswith("utf") else "")
            ) from None
        except csv.Error as exc:
            raise ValidationError(f"{self.path}:{line}: the CSV is malformed: {exc}") from None

    def close(self) -> None:
        self.stream.close()


def open_csv(path: Path, encoding: str | None = None, delimiter: str | None = None) -> CsvFile:
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    enc = _encoding_of(path, encoding)
    stream = path.open("r", encoding=enc, newline="", errors="strict")
    try:
        first = stream.readline()
    except UnicodeDecodeError:
        stream.close()
        raise ValidationError(
            f"{path}:1: the file is not valid {enc} text (try --encoding latin-1 or cp1252)"
        ) from None
    if not first.strip():
        stream.close()
        raise ValidationError(f"{path}:1: the file is empty; the first line must be the header")
    if delimiter is not None and delimiter not in DELIMITERS:
        stream.close()
        raise UsageError("--delimiter must be ',', ';' or a tab ('\\t')")
    sep = delimiter or _sniff_delimiter(first)
    header = next(csv.reader(io.StringIO(first), delimiter=sep, strict=True))
    reader = csv.reader(stream, delimiter=sep, strict=True)
    return CsvFile(path, [h.strip() for h in header], sep, enc, stream, reader)


# -- the import ---------------------------------------------------------------------------


def _normal(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _column_targets(csvfile: CsvFile, options: ImportOptions) -> list[str | None]:
    """What each column feeds: a customer field, ``fields.<name>`` for a custom field, or None."""
    path, header = csvfile.path, csvfile.header
    problems: list[str] = []
    missing = [source for source in options.mapping if source not in header]
    if missing:
        raise UsageError(
            f"--map names column(s) {', '.join(map(repr, missing))} that {path} does not have "
            f"(its columns: {', '.join(header)})"
        )
    targets: list[str | None] = []
    for column in header:
        if not column:
            problems.append("a column has an empty name")
            targets.append(None)
            continue
        if column == REASON_COLUMN:
            targets.append(None)
            continue
        if column in options.mapping:
            mapped = options.mapping[column]
            targets.append(_normal(mapped) if _normal(mapped) in IMPORT_FIELDS else f"fields.{mapped}")
        elif _normal(column) in IMPORT_FIELDS:
            targets.append(_normal(column))
        else:
            targets.append(f"fields.{column}")
    seen: dict[str, str] = {}
    for column, target in zip(header, targets):
        if target is None:
            continue
        if target in seen:
            problems.append(f"columns {seen[target]!r} and {column!r} both give {target.removeprefix('fields.')!r}")
        seen[target] = column
    if options.key not in seen:
        problems.append(
            f"there is no {options.key} column (columns: {', '.join(header)}); "
            f"rename one with --map 'COLUMN={options.key}'"
        )
    if problems:
        raise ValidationError(f"{path}:1: the header is not usable: " + "; ".join(problems))
    return targets


class _Importer:
    def __init__(self, store: Store, library: Library, options: ImportOptions, today: str, source: str) -> None:
        self.store = store
        self.library = library
        self.options = options
        self.today = today
        self.source = source
        self.cleaner = Cleaner(options.date_format)
        self.result = ImportResult()

    def row_values(self, targets: Sequence[str | None], cells: Sequence[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        custom: dict[str, str] = {}
        for target, raw in zip(targets, cells):
            if target is None or not raw.strip():
                continue
            try:
                if target.startswith("fields."):
                    custom[target[len("fields."):]] = self.cleaner.clean("field", raw)
                elif target in PLACEMENT:
                    values[target] = raw.strip()
                else:
                    values[target] = self.cleaner.clean(target, raw)
            except ValueError as exc:
                raise RowError(str(exc)) from None
        first, last = values.pop("first_name", ""), values.pop("last_name", "")
        if "name" not in values and (first or last):
            values["name"] = split_name(first, last)
        if custom:
            values["fields"] = custom
        return values

    def remember(self, kind: str, key: str, line: int) -> None:
        try:
            self.store.conn.execute(
                "INSERT INTO temp.import_seen (key, line) VALUES (?, ?)", [f"{kind}:{key.lower()}", line]
            )
        except sqlite3.IntegrityError:
            first = self.store.scalar(
                "SELECT line FROM temp.import_seen WHERE key = ?", [f"{kind}:{key.lower()}"]
            )
            raise RowError(f"{kind} {key!r} is already on line {first} of this file") from None

    def placement(self, values: dict[str, Any]) -> tuple[Any, str | None, str] | None:
        funnel_id = values.pop("funnel", None) or self.options.funnel
        stage_id = values.pop("stage", None) or (self.options.stage if funnel_id == self.options.funnel else None)
        entered = values.pop("entered_on", None)
        if not funnel_id:
            if stage_id or entered:
                raise RowError("stage or entered_on is given without a funnel")
            return None
        funnel = self.library.funnels.get(funnel_id)
        if funnel is None:
            raise RowError(f"no funnel {funnel_id!r} (funnels: {', '.join(sorted(self.library.funnels))})")
        if stage_id and stage_id not in {s.id for s in funnel.stages}:
            raise RowError(f"funnel {funnel_id!r} has no stage {stage_id!r}")
        on = self.today
        if entered:
            try:
                on = self.cleaner.clean("signed_on", entered)
            except ValueError as exc:
                raise RowError(str(exc).replace("signed_on", "entered_on")) from None
            if on > self.today:
                raise RowError(f"entered_on {entered} is after today ({self.today})")
        return funnel, stage_id, on

    def apply_row(self, line: int, values: dict[str, Any]) -> None:
        key_column = self.options.key
        key = values.get(key_column)
        if not key:
            raise RowError(f"the {key_column} is empty")
        self.remember(key_column, key, line)
        if key_column != "email" and values.get("email"):
            self.remember("email", values["email"], line)
        place = self.placement(values)
        existing = self.store.customer_by(key_column, key)
        email = values.get("email")
        if email and (existing is None or existing["email"] != email):
            holder = self.store.customer_by("email", email)
            if holder is not None:
                raise RowError(f"email {email!r} already belongs to customer #{holder['id']}")
        if existing is None:
            customer_id = self.store.insert_customer({"name": "", **values}, self.today)
            self.store.add_event(customer_id, self.today, "customer", f"Imported from {self.source} line {line}")
            self.result.inserted += 1
        else:
            customer_id = existing["id"]
            changes = changes_for(existing, values)
            if changes:
                self.store.update_customer(customer_id, changes, self.today)
                self.store.add_event(
                    customer_id,
                    self.today,
                    "customer",
                    f"Updated from {self.source} line {line}: {', '.join(sorted(changes))}",
                )
                self.result.updated += 1
            else:
                self.result.unchanged += 1
        if place is not None:
            funnel, stage_id, on = place
            already = self.store.scalar(
                "SELECT 1 FROM enrollments WHERE customer_id = ? AND funnel = ?", [customer_id, funnel.id]
            )
            if not already:
                customer = self.store.customer_by("id", str(customer_id))
                assert customer is not None
                engine.enroll(
                    self.store, customer, funnel, stage_id=stage_id, on=on, by="import",
                    note=f"imported from {self.source}",
                )
                self.result.enrolled += 1


def import_customers(
    store: Store,
    library: Library,
    path: Path,
    options: ImportOptions,
    today: str,
    on_row: Callable[[int], None] | None = None,
) -> ImportResult:
    """Upsert customers from a CSV file; see the module docstring for the guarantees."""
    if options.key not in ("email", "external_id"):
        raise UsageError("--key must be email or external_id")
    if options.funnel:
        funnel = library.funnel(options.funnel)
        if options.stage:
            funnel.stage(options.stage)
    elif options.stage:
        raise UsageError("--stage needs --funnel")
    csvfile = open_csv(path, options.encoding, options.delimiter)
    rejects: Any = None
    rejects_tmp = options.skip_bad.with_name(options.skip_bad.name + ".tmp") if options.skip_bad else None
    try:
        targets = _column_targets(csvfile, options)
        importer = _Importer(store, library, options, today, path.name)
        width = len(csvfile.header)
        if rejects_tmp is not None:
            rejects = rejects_tmp.open("w", encoding="utf-8", newline="")
            reject_writer = csv.writer(rejects, lineterminator="\n")
            reject_writer.writerow([*csvfile.header, REASON_COLUMN])
        with store.write():
            store.conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_seen (key TEXT PRIMARY KEY, line INTEGER)")
            store.conn.execute("DELETE FROM temp.import_seen")
            for count, (line, cells) in enumerate(csvfile.rows(), start=1):
                if on_row is not None:
                    on_row(count)
                if not any(c.strip() for c in cells):
                    continue
                try:
                    if len(cells) != width:
                        raise RowError(f"{len(cells)} values but the header has {width} columns")
                    store.conn.execute("SAVEPOINT import_row")
                    try:
                        importer.apply_row(line, importer.row_values(targets, cells))
                    except BaseException:
                        store.conn.execute("ROLLBACK TO import_row")
                        raise
                    finally:
                        store.conn.execute("RELEASE import_row")
                except RowError as exc:
                    importer.result.reject(line, str(exc))
                    if rejects is not None:
                        reject_writer.writerow([*cells, str(exc)])
            store.conn.execute("DROP TABLE temp.import_seen")
            result = importer.result
            if result.rejected and rejects is None:
                more = result.rejected - len(result.problems)
                details = [f"{path}:{p.removeprefix('line ')}" for p in result.problems]
                if more:
                    details.append(f"… and {more} more bad row(s)")
                raise ValidationError(
                    f"{path}: {result.rejected} bad row(s); nothing was imported "
                    "(fix them, or pass --skip-bad FILE to import the good rows)",
                    details,
                )
            if options.dry_run:
                raise _DryRun()
    except _DryRun:
        pass
    finally:
        csvfile.close()
        if rejects is not None:
            rejects.close()
    if rejects_tmp is not None and options.skip_bad is not None:
        if options.dry_run:
            rejects_tmp.unlink(missing_ok=True)
        else:
            os.replace(rejects_tmp, options.skip_bad)
    return importer.result


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


# -- export ---------------------------------------------------------------------------------

EXPORT_TABLES = ("customers", "activities", "history", "outbox", "touchpoints", "signals")


def customer_export_columns(store: Store) -> list[str]:
    custom = [
        r["key"]
        for r in store.rows(
            "SELECT DISTINCT j.key AS key FROM customers, json_each(customers.fields) j ORDER BY 1"
        )
    ]
    return [*FIELDS, *[c for c in custom if c not in IMPORT_FIELDS]]


def export_rows(store: Store, table: str) -> tuple[list[str], Iterator[Row]]:
    """Columns and a row iterator for one exportable table."""
    if table == "customers":
        columns = customer_export_columns(store)

        def flat() -> Iterator[Row]:
            for row in store.customers():
                yield {**row.pop("fields"), **row}

        return columns, flat()
    name = "stage_history" if table == "history" else table
    first = store.one(f"SELECT * FROM {name} LIMIT 1")
    columns = ["customer", *(first.keys() if first else [])]
    return columns, store.table_rows(name)


def export_json_rows(store: Store, table: str) -> Iterator[Row]:
    if table == "customers":
        return store.customers()
    return store.table_rows("stage_history" if table == "history" else table)
